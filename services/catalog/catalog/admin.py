"""The operator's view of the catalog. Every product change goes through the service functions, so the
admin publishes the same events (and invalidates the same cache) as the API; rows are never hard-deleted."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count

from catalog import services
from catalog.models import Category, Product
from shared.admin_ui.changelists import LagTolerantChangeListMixin
from shared.web.errors import DomainError

PRODUCT_FIELDS = ("sku", "name", "description", "category", "price", "is_active")


class ProductAdminForm(forms.ModelForm):
    initial_stock = forms.IntegerField(
        min_value=0, initial=0, required=False, help_text="Opening stock, created by inventory."
    )

    class Meta:
        model = Product
        fields = PRODUCT_FIELDS

    def clean_sku(self) -> str:
        try:
            sku = services.normalize_sku(self.cleaned_data["sku"])
        except DomainError as exc:
            raise forms.ValidationError(exc.fields["sku"]) from exc
        if Product.objects.filter(sku=sku).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("A product with this SKU already exists.")
        return sku


@admin.register(Product)
class ProductAdmin(LagTolerantChangeListMixin, admin.ModelAdmin):
    form = ProductAdminForm
    list_display = ("sku", "name", "category", "price", "currency", "is_active", "updated_at")
    list_editable = ("price",)
    list_filter = ("category", "is_active")
    list_select_related = ("category",)
    search_fields = ("sku", "name", "description")
    readonly_fields = ("id", "currency", "created_at", "updated_at")
    ordering = ("name",)
    actions = ["deactivate", "reactivate"]

    def get_fields(self, request, obj=None):
        if obj is None:  # adding: opening stock instead of the read-only bookkeeping fields
            return (*PRODUCT_FIELDS[:-1], "initial_stock")
        return ("id", *PRODUCT_FIELDS, "currency", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("search_vector")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            changed = {field: data[field] for field in form.changed_data if field in PRODUCT_FIELDS}
            services.product_update(product=obj, **changed)
        else:
            services.product_create(
                product_id=obj.id,  # the admin keeps using `obj` (log entry, redirect): same id
                sku=data["sku"],
                name=data["name"],
                description=data["description"],
                category=data["category"],
                price=data["price"],
                initial_stock=data.get("initial_stock") or 0,
            )
            obj._state.adding = False
            obj._state.db = "default"

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # orders refer to products forever: retire them with "Deactivate"

    @admin.action(description="Deactivate selected products (soft delete, publishes product.deleted)")
    def deactivate(self, request, queryset):
        for product in queryset:
            services.product_delete(product=product)
        self.message_user(request, f"{queryset.count()} products deactivated.", messages.SUCCESS)

    @admin.action(description="Reactivate selected products")
    def reactivate(self, request, queryset):
        for product in queryset:
            services.product_update(product=product, is_active=True)
        self.message_user(request, f"{queryset.count()} products reactivated.", messages.SUCCESS)


@admin.register(Category)
class CategoryAdmin(LagTolerantChangeListMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "product_count")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(product_count=Count("products"))

    @admin.display(ordering="product_count", description="products")
    def product_count(self, category: Category) -> int:
        return category.product_count

    def get_readonly_fields(self, request, obj=None):
        return ("slug",) if obj else ()  # slugs are in URLs and events: permanent

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj else self.prepopulated_fields

    def save_model(self, request, obj, form, change):
        if change:
            services.category_rename(category=obj, name=form.cleaned_data["name"])
        else:
            created = services.category_create(name=obj.name, slug=obj.slug)
            obj.pk = created.pk
            obj._state.adding = False
            obj._state.db = "default"
