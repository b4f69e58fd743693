// AccessGuard's refusals, one by one (wrong Host, foreign Origin, cross-site
// fetches, a POST or event stream without a same-origin proof, no cookie, a
// token in a Referer, a wrong token) and its one way in: the token in the
// printed URL exchanged for an HttpOnly SameSite=Strict cookie.
#include "dashboard/access.h"

#include <gtest/gtest.h>

namespace herd::dashboard {
namespace {

constexpr int kPort = 8123;
const std::string kToken = "0123456789abcdef0123456789abcdef";

HttpRequest Request(std::string method, std::string target,
                    std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.method = std::move(method);
  request.target = target;
  size_t question = target.find('?');
  request.path = target.substr(0, question);
  if (question != std::string::npos) request.query = target.substr(question + 1);
  request.headers = std::move(headers);
  return request;
}

// A request as the dashboard's own page sends it, signed in.
HttpRequest Signed(std::string method, std::string target) {
  return Request(std::move(method), std::move(target),
                 {{"host", "127.0.0.1:8123"},
                  {"origin", "http://127.0.0.1:8123"},
                  {"sec-fetch-site", "same-origin"},
                  {"cookie", "other=1; herd_dashboard=" + kToken}});
}

int Refusal(const HttpRequest& request) {
  AccessGuard guard(kToken, kPort);
  std::optional<HttpResponse> refused = guard.Check(request);
  return refused ? refused->status : 0;
}

std::string Header(const HttpResponse& response, const std::string& name) {
  for (const auto& [key, value] : response.headers) {
    if (key == name) return value;
  }
  return "";
}

TEST(AccessGuardTest, SignedInRequestsOfTheOwnPagePass) {
  EXPECT_EQ(Refusal(Signed("GET", "/")), 0);
  EXPECT_EQ(Refusal(Signed("GET", "/events")), 0);
  EXPECT_EQ(Refusal(Signed("POST", "/api/kill")), 0);
  HttpRequest localhost = Signed("GET", "/");
  localhost.headers[0].second = "localhost:8123";
  EXPECT_EQ(Refusal(localhost), 0);
}

TEST(AccessGuardTest, WrongHostIsRefused) {
  for (const char* host : {"evil.example:8123", "127.0.0.1:9999", "127.0.0.1",
                           "localhost.evil:8123", "127.0.0.1:8123.evil"}) {
    HttpRequest request = Signed("GET", "/");
    request.headers[0].second = host;
    EXPECT_EQ(Refusal(request), 403) << host;
  }
  HttpRequest no_host = Signed("GET", "/");
  no_host.headers.erase(no_host.headers.begin());
  EXPECT_EQ(Refusal(no_host), 403);
}

TEST(AccessGuardTest, ForeignOriginIsRefused) {
  for (const char* origin :
       {"http://evil.example", "http://127.0.0.1:9999", "https://127.0.0.1:8123", "null"}) {
    HttpRequest request = Signed("POST", "/api/kill");
    request.headers[1].second = origin;
    EXPECT_EQ(Refusal(request), 403) << origin;
    HttpRequest get = Signed("GET", "/api/doctor");
    get.headers[1].second = origin;
    EXPECT_EQ(Refusal(get), 403) << origin;
  }
}

TEST(AccessGuardTest, CrossSiteFetchesAreRefused) {
  for (const char* site : {"cross-site", "same-site"}) {
    HttpRequest request = Signed("GET", "/");
    request.headers.erase(request.headers.begin() + 1);  // no Origin, as for a GET
    request.headers[1].second = site;
    EXPECT_EQ(Refusal(request), 403) << site;
  }
}

TEST(AccessGuardTest, PostsAndTheEventStreamNeedProofOfTheSameOrigin) {
  for (const char* target : {"/api/kill", "/api/stop"}) {
    HttpRequest request = Request(
        "POST", target, {{"host", "127.0.0.1:8123"}, {"cookie", "herd_dashboard=" + kToken}});
    EXPECT_EQ(Refusal(request), 403) << target;
  }
  HttpRequest events = Request(
      "GET", "/events", {{"host", "127.0.0.1:8123"}, {"cookie", "herd_dashboard=" + kToken}});
  EXPECT_EQ(Refusal(events), 403);
  // What a browser sends for its own page's EventSource: no Origin, Sec-Fetch-Site.
  events.headers.emplace_back("sec-fetch-site", "same-origin");
  EXPECT_EQ(Refusal(events), 0);
}

TEST(AccessGuardTest, NoCookieIsUnauthorized) {
  HttpRequest request = Signed("GET", "/api/doctor");
  request.headers.pop_back();
  EXPECT_EQ(Refusal(request), 401);
  HttpRequest wrong = Signed("GET", "/api/doctor");
  wrong.headers.back().second = "herd_dashboard=" + std::string(32, 'f');
  EXPECT_EQ(Refusal(wrong), 401);
}

TEST(AccessGuardTest, TokenInARefererCountsForNothing) {
  HttpRequest request = Signed("GET", "/api/doctor");
  request.headers.back() = {"referer", "http://127.0.0.1:8123/?token=" + kToken};
  EXPECT_EQ(Refusal(request), 401);
  // Nor on another path's query.
  HttpRequest elsewhere = Signed("GET", "/api/doctor?token=" + kToken);
  elsewhere.headers.pop_back();
  EXPECT_EQ(Refusal(elsewhere), 401);
}

TEST(AccessGuardTest, RepeatedHostOrOriginIsRefused) {
  HttpRequest hosts = Signed("GET", "/");
  hosts.headers.emplace_back("host", "evil.example");
  EXPECT_EQ(Refusal(hosts), 400);
  HttpRequest origins = Signed("POST", "/api/kill");
  origins.headers.emplace_back("origin", "http://evil.example");
  EXPECT_EQ(Refusal(origins), 400);
}

TEST(AccessGuardTest, WrongTokenIsRefused) {
  HttpRequest request =
      Request("GET", "/?token=" + std::string(32, '0'), {{"host", "127.0.0.1:8123"}});
  EXPECT_EQ(Refusal(request), 403);
}

TEST(AccessGuardTest, TokenIsExchangedForAStrictHttpOnlyCookieAndARedirect) {
  AccessGuard guard(kToken, kPort);
  HttpRequest request =
      Request("GET", "/?token=" + kToken, {{"host", "127.0.0.1:8123"}, {"sec-fetch-site", "none"}});
  std::optional<HttpResponse> login = guard.Check(request);
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 303);
  EXPECT_EQ(Header(*login, "Location"), "/");
  std::string cookie = Header(*login, "Set-Cookie");
  EXPECT_EQ(cookie, "herd_dashboard=" + kToken + "; HttpOnly; SameSite=Strict; Path=/");
  EXPECT_EQ(guard.LoginUrl(), "http://127.0.0.1:8123/?token=" + kToken);
}

TEST(AccessGuardTest, SecurityHeadersForbidInlineScriptFramingAndReferrers) {
  std::string csp;
  for (const auto& [name, value] : AccessGuard::SecurityHeaders()) {
    EXPECT_EQ(name.rfind("Access-Control-", 0), std::string::npos) << "no CORS header: " << name;
    if (name == "Content-Security-Policy") csp = value;
  }
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
}

TEST(AccessGuardTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
}

}  // namespace
}  // namespace herd::dashboard
