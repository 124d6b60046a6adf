from django.urls import re_path

from apps.roaming.ocpi import (
    chargingprofiles,
    commands,
    cpo_urls,
    emsp_commands,
    emsp_tokens,
    emsp_urls,
    tokens,
    views,
)

urlpatterns = [
    re_path(r"^versions/?$", views.versions, name="ocpi-versions"),
    re_path(r"^2\.2\.1/?$", views.version_details, name="ocpi-version-details"),
    re_path(r"^2\.2\.1/credentials/?$", views.credentials, name="ocpi-credentials"),
    # CPO Receiver modules
    re_path(
        r"^2\.2\.1/tokens/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<token_uid>[^/]+)/?$",
        tokens.token,
        name="ocpi-tokens",
    ),
    re_path(r"^2\.2\.1/commands/(?P<command>[^/]+)/?$", commands.command, name="ocpi-commands"),
    re_path(
        r"^2\.2\.1/chargingprofiles/(?P<session_id>[^/]+)/?$",
        chargingprofiles.charging_profile,
        name="ocpi-chargingprofiles",
    ),
]
urlpatterns += cpo_urls.urlpatterns  # CPO Sender interfaces
# eMSP commands Sender: our response_url for the CPO's CommandResults
urlpatterns += [
    re_path(
        r"^emsp/2\.2\.1/commands/(?P<command>[A-Z_]{1,30})/(?P<uid>[^/]{1,36})/?$",
        emsp_commands.command_result,
        name="ocpi-emsp-command-result",
    ),
]
urlpatterns += emsp_urls.urlpatterns  # eMSP Receivers of the CPO's data (emsp_receivers)

# eMSP tokens Sender (GET list, real-time authorization)
urlpatterns += [
    re_path(r"^emsp/2\.2\.1/tokens/?$", emsp_tokens.tokens, name="ocpi-emsp-tokens"),
    re_path(
        r"^emsp/2\.2\.1/tokens/(?P<token_uid>[^/]+)/authorize/?$",
        emsp_tokens.authorize,
        name="ocpi-emsp-tokens-authorize",
    ),
]
