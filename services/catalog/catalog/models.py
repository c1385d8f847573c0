"""Categories and products, with a full-text search vector Postgres keeps up to date itself."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MinValueValidator
from django.db import models

CURRENCY = "USD"

# Names and descriptions are stemmed as English ("lamps" finds "lamp"); SKUs are codes, not words.
SEARCH_CONFIG = "english"


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True, help_text="Used in URLs and events; never changes.")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=64, unique=True, help_text="Stock keeping unit, stored upper-case.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    category = models.ForeignKey(
        Category,
        on_delete=models.PROTECT,
        related_name="products",
        db_index=False,  # catalog_product_category_idx (category, is_active) serves category lookups
    )
    price = models.DecimalField(
        max_digits=12, decimal_places=2, validators=[MinValueValidator(Decimal("0.01"))]
    )
    currency = models.CharField(max_length=3, default=CURRENCY, editable=False)
    is_active = models.BooleanField(default=True, help_text="Inactive products are hidden from customers.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # A stored generated column: Postgres recomputes it on every insert and update, whoever writes the
    # row (service functions, admin, a bulk update), so search can never drift from the data.
    search_vector = models.GeneratedField(
        expression=(
            SearchVector("name", weight="A", config=SEARCH_CONFIG)
            + SearchVector("sku", weight="A", config="simple")
            + SearchVector("description", weight="B", config=SEARCH_CONFIG)
        ),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        ordering = ["name"]
        indexes = [
            GinIndex(fields=["search_vector"], name="catalog_product_search_idx"),
            models.Index(fields=["category", "is_active"], name="catalog_product_category_idx"),
            models.Index(fields=["price"], name="catalog_product_price_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gt=Decimal("0")), name="catalog_price_positive"),
            models.CheckConstraint(condition=models.Q(currency=CURRENCY), name="catalog_currency_usd"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
