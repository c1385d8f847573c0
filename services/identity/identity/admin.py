"""identity's admin. Every change to a user goes through identity.services, as from the API: a change of
access (active, staff, superuser) or a new password withdraws the user's tokens everywhere at once."""

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm

from identity import services
from identity.models import SignIn, User
from shared.admin_ui.changelists import LagTolerantChangeListMixin


class PasswordChangeForm(AdminPasswordChangeForm):
    """The admin's "change password" form, saved through the service (signs the user out everywhere)."""

    def save(self, commit: bool = True):
        return services.user_set_password(user=self.user, password=self.cleaned_data["password1"])


@admin.register(User)
class UserAdmin(LagTolerantChangeListMixin, DjangoUserAdmin):
    ordering = ("-date_joined",)
    list_display = ("email", "full_name", "is_staff", "is_active", "date_joined", "last_login")
    list_filter = ("is_staff", "is_active")
    search_fields = ("email", "full_name")
    readonly_fields = ("id", "date_joined", "last_login", "deactivated_at", "auth_version", "auth_changed_at")
    fieldsets = (
        (None, {"fields": ("id", "email", "password")}),
        ("Profile", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "deactivated_at", "is_staff", "is_superuser", "groups")}),
        ("Tokens", {"fields": ("auth_version", "auth_changed_at")}),
        ("Dates", {"fields": ("date_joined", "last_login")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )
    change_password_form = PasswordChangeForm
    actions = ["deactivate", "reactivate"]

    def save_model(self, request, obj, form, change):
        """Through the services, never `obj.save()`: registration announces the user, and a change of
        access withdraws the tokens already issued (the form's other fields are saved as Django would)."""
        if not change:
            created = services.user_register(
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                full_name=form.cleaned_data.get("full_name", ""),
            )
            obj.pk, obj._state.adding = created.pk, False
            obj.refresh_from_db()
            return
        changes = {
            field: form.cleaned_data[field] for field in services.ACCESS_FIELDS if field in form.changed_data
        }
        if "full_name" in form.changed_data:
            changes["full_name"] = form.cleaned_data["full_name"]
        other = [
            field for field in form.changed_data if field not in (*changes, "groups", "user_permissions")
        ]
        if other:  # e.g. the e-mail address: no effect on tokens
            User.objects.filter(pk=obj.pk).update(**{field: form.cleaned_data[field] for field in other})
        services.user_update(user=obj, **changes)
        obj.refresh_from_db()

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


@admin.register(SignIn)
class SignInAdmin(LagTolerantChangeListMixin, admin.ModelAdmin):
    """Who is signed in where; ending a sign-in withdraws every token minted for it."""

    list_display = ("user", "kind", "created_at", "refreshed_at", "expires_at", "ended_at", "end_reason")
    list_filter = ("kind", "end_reason", ("ended_at", admin.EmptyFieldListFilter))
    search_fields = ("user__email", "id")
    ordering = ("-created_at",)
    actions = ["end"]

    @admin.action(description="End selected sign-ins (their tokens stop working)")
    def end(self, request, queryset):
        ended = sum(
            services.sign_in_end(sign_in_id=str(pk), reason=SignIn.EndReason.LOGOUT)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{ended} sign-ins ended.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
