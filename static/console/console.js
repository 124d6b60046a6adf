// The console renders times in the zone the browser reports (apps/tenants/middleware.py reads this cookie).
(function () {
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) return;
  if (document.cookie.split('; ').indexOf('evp_tz=' + zone) === -1) {
    document.cookie = 'evp_tz=' + zone + '; path=/; max-age=31536000; samesite=lax';
  }
})();

// Below 1500 px the navigation starts folded (the « toggle opens it, and the choice is kept), so lists keep
// their key columns in view at 1280 and 1440 px. Runs before Django's deferred nav_sidebar.js reads the setting.
(function () {
  try {
    var key = 'django.admin.navSidebarIsOpen';
    if (localStorage.getItem(key) === null && window.innerWidth < 1500) localStorage.setItem(key, 'false');
  } catch (e) { /* storage disabled: Django's default (open) applies */ }
})();

// The language selector in the header (templates/admin/base_site.html) posts Django's set_language on change.
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('console-language');
  if (!form) return;
  form.querySelector('select').addEventListener('change', function () { form.submit(); });
});
