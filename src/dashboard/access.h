// AccessGuard: who may use the dashboard, decided on every request.
//
// The dashboard can stop processes, so it treats every request as hostile
// until it proves it comes from the person who started `herd dashboard`,
// through their own browser, on this machine:
//   - Host must be 127.0.0.1:<port>, localhost:<port> or [::1]:<port>: a
//     page on another site that rebinds its DNS name to 127.0.0.1 sends its
//     own name (DNS rebinding).
//   - Origin, when sent, must be this dashboard's own origin; a POST, and
//     the event stream, must show they are same-origin (Origin, or for a
//     same-origin GET that browsers send without Origin, Sec-Fetch-Site:
//     same-origin). Sec-Fetch-Site cross-site or same-site is refused
//     everywhere (CSRF, and pages on other localhost ports).
//   - A random token (128 bits; RunDashboard keeps it across restarts)
//     printed in the URL is exchanged, on
//     GET /?token=..., for an HttpOnly SameSite=Strict cookie and a redirect
//     that drops it from the address bar; every other request needs the
//     cookie. A token anywhere else (a Referer, another path) counts for
//     nothing. Comparisons take the same time whatever the bytes.
// The dashboard sends no CORS headers at all, and every reply carries
// SecurityHeaders(): a Content-Security-Policy allowing only its own
// scripts, styles and connections (no inline script), no framing, no
// referrer, no sniffing, no caching.
//
// Immutable after construction: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dashboard/http.h"

namespace herd::dashboard {

inline constexpr const char kSessionCookie[] = "herd_dashboard";

class AccessGuard {
 public:
  // `token`: the secret of this run (RandomHex(32)); `port`: the bound port.
  AccessGuard(std::string token, int port);

  const std::string& token() const { return token_; }
  // The URL to print: http://127.0.0.1:<port>/?token=<token>.
  std::string LoginUrl() const;

  // A refusal to send instead of serving `request`, or nullopt when it may
  // be served. A valid login (GET /?token=...) is answered here too: the
  // redirect that sets the cookie.
  std::optional<HttpResponse> Check(const HttpRequest& request) const;

  // Headers every reply carries.
  static const std::vector<std::pair<std::string, std::string>>& SecurityHeaders();

 private:
  bool HostAllowed(const std::string& host) const;
  bool OriginAllowed(const std::string& origin) const;
  bool HasSessionCookie(const HttpRequest& request) const;

  const std::string token_;
  const int port_;
};

// True when `a` equals `b`, in time that depends only on their lengths.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace herd::dashboard
