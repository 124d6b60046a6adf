// The console renders times in the zone the browser reports (apps/tenants/middleware.py reads this cookie).
(function () {
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || !/^[A-Za-z0-9_+\-\/]+$/.test(zone)) return;
  if (document.cookie.split('; ').indexOf('evp_tz=' + zone) === -1) {
    document.cookie = 'evp_tz=' + zone + '; path=/; max-age=31536000; samesite=lax';
  }
})();
