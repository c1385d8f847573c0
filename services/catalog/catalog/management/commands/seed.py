from django.core.management.base import BaseCommand
from django.db import transaction

from catalog import services
from catalog.demo_data import CATEGORIES, PRODUCTS
from catalog.models import Category, Product


class Command(BaseCommand):
    help = "Load the demo categories and products (idempotent: existing ones are left untouched)."

    @transaction.atomic
    def handle(self, *args, **options):
        categories = {slug: self._category(slug, name) for slug, name in CATEGORIES}
        existing_ids = set(Product.objects.values_list("id", flat=True))
        existing_skus = set(Product.objects.values_list("sku", flat=True))
        created = 0
        for demo in PRODUCTS:
            # A demo product whose SKU staff changed is still there (same id); a SKU staff reused for
            # their own product is theirs.
            if demo.id in existing_ids or demo.sku in existing_skus:
                continue
            services.product_create(
                product_id=demo.id,
                sku=demo.sku,
                name=demo.name,
                description=demo.description,
                category=categories[demo.category],
                price=demo.price,
                initial_stock=demo.initial_stock,
            )
            created += 1
        self.stdout.write(f"{created} products created, {len(PRODUCTS) - created} already there")

    def _category(self, slug: str, name: str) -> Category:
        category = Category.objects.filter(slug=slug).first()
        return category or services.category_create(name=name, slug=slug)
