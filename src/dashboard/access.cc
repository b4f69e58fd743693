#include "dashboard/access.h"

#include <string_view>

namespace herd::dashboard {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

HttpResponse Refuse(int status, std::string why) {
  return HttpResponse::Text(status, std::move(why));
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return difference == 0;
}

AccessGuard::AccessGuard(std::string token, int port) : token_(std::move(token)), port_(port) {}

std::string AccessGuard::LoginUrl() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/?token=" + token_;
}

const std::vector<std::pair<std::string, std::string>>& AccessGuard::SecurityHeaders() {
  static const std::vector<std::pair<std::string, std::string>> headers = {
      {"Content-Security-Policy",
       "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cache-Control", "no-store"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
  };
  return headers;
}

bool AccessGuard::HostAllowed(const std::string& host) const {
  std::string port = ":" + std::to_string(port_);
  return host == "127.0.0.1" + port || host == "localhost" + port || host == "[::1]" + port;
}

bool AccessGuard::OriginAllowed(const std::string& origin) const {
  std::string_view rest = origin;
  if (rest.substr(0, 7) != "http://") return false;
  return HostAllowed(std::string(rest.substr(7)));
}

bool AccessGuard::HasSessionCookie(const HttpRequest& request) const {
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    std::string_view rest = value;
    while (!rest.empty()) {
      size_t semicolon = rest.find(';');
      std::string_view pair = Trim(rest.substr(0, semicolon));
      rest = semicolon == std::string_view::npos ? "" : rest.substr(semicolon + 1);
      size_t equals = pair.find('=');
      if (equals == std::string_view::npos || pair.substr(0, equals) != kSessionCookie) continue;
      if (ConstantTimeEquals(std::string(pair.substr(equals + 1)), token_)) return true;
    }
  }
  return false;
}

std::optional<HttpResponse> AccessGuard::Check(const HttpRequest& request) const {
  // A second Host or Origin could say something else than the first one
  // checked: refuse rather than pick.
  for (const char* name : {"host", "origin", "sec-fetch-site", "cookie"}) {
    int count = 0;
    for (const auto& header : request.headers) count += header.first == name ? 1 : 0;
    if (count > 1)
      return Refuse(400, std::string("the request has more than one ") + name + " header");
  }
  const std::string* host = request.Header("host");
  if (host == nullptr || !HostAllowed(*host)) {
    return Refuse(403, "this dashboard answers only to Host 127.0.0.1:" + std::to_string(port_) +
                           " or localhost:" + std::to_string(port_) + ", not " +
                           (host ? *host : std::string("(none)")) +
                           ": open the URL `herd dashboard` printed");
  }
  const std::string* origin = request.Header("origin");
  if (origin != nullptr && !OriginAllowed(*origin)) {
    return Refuse(403, "requests from " + *origin +
                           " are refused: only the dashboard's own page "
                           "may use it");
  }
  const std::string* fetch_site = request.Header("sec-fetch-site");
  if (fetch_site != nullptr && *fetch_site != "same-origin" && *fetch_site != "none") {
    return Refuse(403, "requests from another site (Sec-Fetch-Site: " + *fetch_site +
                           ") are refused: only the dashboard's own page may use it");
  }
  bool same_origin = origin != nullptr || (fetch_site != nullptr && *fetch_site == "same-origin");
  bool changes_state = request.method != "GET" && request.method != "HEAD";
  if ((changes_state || request.path == "/events") && !same_origin) {
    return Refuse(403, request.method + " " + request.path +
                           " needs the Origin of the dashboard's own page; use the page");
  }

  if (request.path == "/" && request.method == "GET" &&
      request.query.find("token=") != std::string::npos) {
    if (!ConstantTimeEquals(request.QueryParameter("token"), token_)) {
      return Refuse(403,
                    "that token is not this dashboard's: open the URL the running "
                    "`herd dashboard` printed (each run has a new token)");
    }
    HttpResponse login;
    login.status = 303;
    login.headers = {{"Location", "/"},
                     {"Set-Cookie", std::string(kSessionCookie) + "=" + token_ +
                                        "; HttpOnly; SameSite=Strict; Path=/"}};
    return login;
  }
  if (!HasSessionCookie(request)) {
    return Refuse(401, "not signed in: open the URL `herd dashboard` printed, with its token");
  }
  return std::nullopt;
}

}  // namespace herd::dashboard
