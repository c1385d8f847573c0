"""Products (v1 and v2) and categories. Reads are public and cached; writes are staff only."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView, ListAPIView
from rest_framework.permissions import SAFE_METHODS, AllowAny, BasePermission
from rest_framework.response import Response

from catalog import cache, selectors, services
from catalog.api.serializers import (
    MAX_IDS,
    CategorySerializer,
    ProductCreateSerializer,
    ProductListQuerySerializer,
    ProductSerializer,
    ProductV2Serializer,
    ProductWriteSerializer,
)
from shared.auth.api import IsStaff
from shared.web.pagination import PageNumberPagination
from shared.web.serializers import query_parameters

LIST_DESCRIPTION = f"""Active products, paginated (staff also see inactive ones).

`search` is a ranked full-text search over name and SKU (weighted highest) and description; results
come best match first unless `ordering` is given.

`ids=<uuid>,<uuid>,...` (at most {MAX_IDS}) looks products up by id **including inactive ones** (check
each one's `is_active`), all in one page: the orders service prices a whole order with one call. Unknown
ids are simply absent from `results`; `search`, `category` and the price filters still narrow it."""


def _is_staff(request) -> bool:
    return bool(getattr(request.user, "is_staff", False))


class StaffWritesPublicReads(BasePermission):
    message = IsStaff.message

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or IsStaff().has_permission(request, view)


class ProductPagination(PageNumberPagination):
    def get_page_size(self, request):
        # An `ids` lookup answers in one page: the caller asked for exactly these products.
        return MAX_IDS if "ids" in request.query_params else super().get_page_size(request)


class ProductApiBase(GenericAPIView):
    """What v1 and v2 share; a version differs only in its serializer (and v1 names its successor)."""

    permission_classes = [StaffWritesPublicReads]
    serializer_class = ProductSerializer
    pagination_class = ProductPagination
    api_version = "v1"
    successor_path: str | None = "/api/v2/products/"  # v1 points clients at its successor (RFC 5829)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if self.successor_path:
            pk = self.kwargs.get("pk")
            successor = f"{self.successor_path}{pk}/" if pk else self.successor_path
            response["Link"] = f'<{successor}>; rel="successor-version"'
        return response

    def cached_response(self, key: str, compute) -> Response:
        """The response body, from the read cache when current. Staff and customers never share entries
        (staff see inactive products)."""
        audience = "staff" if _is_staff(self.request) else "public"
        data, hit = cache.cached(f"{self.api_version}:{audience}:{key}", compute)
        return Response(data, headers={"X-Cache": "HIT" if hit else "MISS"})


class ProductListApi(ProductApiBase):
    @extend_schema(
        summary="Search and filter products",
        description=LIST_DESCRIPTION,
        parameters=[ProductListQuerySerializer],
        responses=ProductSerializer(many=True),
    )
    def get(self, request):
        # The absolute URL is the key: `next`/`previous` links in the body depend on host and query.
        return self.cached_response(f"list:{request.build_absolute_uri()}", self._page)

    def _page(self) -> dict:
        filters = query_parameters(ProductListQuerySerializer, self.request)
        # An `ids` lookup is orders pricing an order: a write depends on it, so it reads the primary.
        select = selectors.product_list if "ids" in filters else selectors.product_list_lag_tolerant
        products = select(
            search=filters.get("search", ""),
            category_slug=filters.get("category"),
            min_price=filters.get("min_price"),
            max_price=filters.get("max_price"),
            ordering=filters.get("ordering"),
            ids=filters.get("ids"),
            include_inactive=_is_staff(self.request) or "ids" in filters,
        )
        page = self.paginate_queryset(products)
        return self.get_paginated_response(self.get_serializer(page, many=True).data).data

    @extend_schema(
        summary="Create a product (staff)",
        request=ProductCreateSerializer,
        responses={201: ProductSerializer},
    )
    def post(self, request):
        serializer = ProductCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(**serializer.validated_data)
        return Response(self.get_serializer(product).data, status=status.HTTP_201_CREATED)


class ProductDetailApi(ProductApiBase):
    def _product(self, pk):
        return selectors.product_get(product_id=pk, include_inactive=_is_staff(self.request))

    @extend_schema(
        summary="One product",
        description="One product. Inactive products are 404 except for staff.",
        responses=ProductSerializer,
    )
    def get(self, request, pk):
        def page() -> dict:
            product = selectors.product_get_lag_tolerant(product_id=pk, include_inactive=_is_staff(request))
            return self.get_serializer(product).data

        return self.cached_response(f"detail:{pk}", page)

    def _update(self, request, pk, *, partial: bool) -> Response:
        product = self._product(pk)
        serializer = ProductWriteSerializer(data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(product=product, **serializer.validated_data)
        return Response(self.get_serializer(product).data)

    @extend_schema(
        summary="Replace a product (staff)", request=ProductWriteSerializer, responses=ProductSerializer
    )
    def put(self, request, pk):
        return self._update(request, pk, partial=False)

    @extend_schema(
        summary="Change some of a product's fields (staff)",
        request=ProductWriteSerializer,
        responses=ProductSerializer,
    )
    def patch(self, request, pk):
        return self._update(request, pk, partial=True)

    @extend_schema(
        summary="Deactivate a product (staff)",
        description="Soft delete: the product becomes inactive and `product.deleted` is published.",
        responses={204: OpenApiResponse(description="Deactivated (or already inactive).")},
    )
    def delete(self, request, pk):
        services.product_delete(product=self._product(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProductListV2Api(ProductListApi):
    serializer_class = ProductV2Serializer
    api_version = "v2"
    successor_path = None
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        summary="Search and filter products (prices as money objects)",
        description=LIST_DESCRIPTION,
        parameters=[ProductListQuerySerializer],
        responses=ProductV2Serializer(many=True),
    )
    def get(self, request):
        return super().get(request)


class ProductDetailV2Api(ProductDetailApi):
    serializer_class = ProductV2Serializer
    api_version = "v2"
    successor_path = None
    http_method_names = ["get", "head", "options"]

    @extend_schema(
        summary="One product (price as a money object)",
        description="One product. Inactive products are 404 except for staff.",
        responses=ProductV2Serializer,
    )
    def get(self, request, pk):
        return super().get(request, pk)


class CategoryListApi(ListAPIView):
    permission_classes = [AllowAny]
    serializer_class = CategorySerializer

    @extend_schema(summary="Every category")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        return selectors.category_list_lag_tolerant()
