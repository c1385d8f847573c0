from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from identity import services
from identity.models import User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_active")
    search_fields = ("email", "full_name")
    readonly_fields = ("id", "date_joined", "last_login", "deactivated_at")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "deactivated_at", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    actions = ["deactivate", "reactivate"]

    @admin.action(description="Deactivate selected users (their tokens stop working)")
    def deactivate(self, request, queryset):
        for user in queryset:
            services.user_update(user=user, is_active=False)
        self.message_user(request, f"{queryset.count()} users deactivated.", messages.SUCCESS)

    @admin.action(description="Reactivate selected users")
    def reactivate(self, request, queryset):
        for user in queryset:
            services.user_update(user=user, is_active=True)
        self.message_user(request, f"{queryset.count()} users reactivated.", messages.SUCCESS)
