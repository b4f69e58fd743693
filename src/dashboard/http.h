// A small HTTP/1.1 server for the dashboard: one listening socket on a
// loopback address, one thread per connection, keep-alive, and streamed
// replies (Server-Sent Events) that write until the peer leaves or the
// server stops.
//
// It is not a general web server. A request is a request line, headers
// (at most kMaxHeadBytes together) and an optional body with a
// Content-Length of at most kMaxBodyBytes; anything else (chunked request
// bodies, HTTP/0.9, obsolete line folding, a second Content-Length) is
// answered 400, 411, 413, 431 or 505 and the connection closed. Header
// names are lower-cased on parsing.
//
// Threads: Start spawns the accept thread; each accepted connection gets a
// thread of its own, at most kMaxConnections at once (the next is answered
// 503). The handler runs on connection threads, concurrently: it must be
// thread-safe. A streamed reply's writer is called on its connection's
// thread and returns when it likes; StreamWriter::Write fails once the peer
// has gone, and `stopping()` fires when the server stops, so a stream that
// blocks must wait on it (DirectoryWatch::WaitUntil takes it). Stop (or the
// destructor) closes the listening socket, fires `stopping`, shuts every
// connection down and joins every thread.
#pragma once

#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "util/status.h"
#include "util/stop_signal.h"

namespace herd::dashboard {

struct HttpRequest {
  std::string method;                                        // GET, POST, ...
  std::string target;                                        // as sent: /path?query
  std::string path;                                          // target before '?', not decoded
  std::string query;                                         // after '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;

  // The first header called `name` (lower-case), or nullptr.
  const std::string* Header(std::string_view name) const;
  // The query parameter `name`, percent-decoded; "" when absent.
  std::string QueryParameter(std::string_view name) const;
};

// Writes a streamed reply's body.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  // Sends `data` at once; false once the peer has closed or the server stops.
  virtual bool Write(std::string_view data) = 0;
  // Fires when the server stops: a writer blocked on something else waits on it too.
  virtual const StopSignal& stopping() const = 0;
};

struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, the reply has no Content-Length: after the head, `stream`
  // writes the body, and the connection closes when it returns.
  std::function<void(StreamWriter&)> stream;

  static HttpResponse Text(int status, std::string text);
  static HttpResponse Json(int status, std::string json_text);
  // Adds a header (no check that it is not there already).
  HttpResponse& With(std::string name, std::string value);
};

// The standard reason phrase of `status` ("Not Found"), or "Status".
const char* ReasonPhrase(int status);

// Parses a request head (the bytes before the blank line, without it).
// On failure the Status's message says why and `*status_code` is the reply
// to send (400, 431, 505...).
Result<HttpRequest> ParseRequestHead(std::string_view head, int* status_code);

// The head of `response` for the wire (status line, headers, blank line);
// Content-Length is added unless it streams.
std::string SerializeResponseHead(const HttpResponse& response, bool keep_alive);

// "%41" -> "A", "+" -> " "; malformed escapes stay as they are.
std::string PercentDecode(std::string_view text);

class HttpServer {
 public:
  static constexpr size_t kMaxHeadBytes = 16 * 1024;
  static constexpr size_t kMaxBodyBytes = 64 * 1024;
  static constexpr size_t kMaxConnections = 64;
  // An idle keep-alive connection is closed after this long.
  static constexpr int kIdleTimeoutMs = 60 * 1000;

  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // Binds `address` (an IPv4 literal, "127.0.0.1") and `port` (0: any
  // free one) and starts serving. IOError when the port is taken, with the
  // way out.
  static Result<std::unique_ptr<HttpServer>> Start(const std::string& address, int port,
                                                   Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting, ends every connection and stream, joins every thread; idempotent.
  void Stop();
  // Connections open now (for tests and the benchmark).
  size_t OpenConnections();

 private:
  struct Connection {
    int fd = -1;
    std::thread thread;
    bool done = false;
  };

  HttpServer(int listen_fd, int port, Handler handler, std::shared_ptr<StopSignal> stop);
  void AcceptLoop();
  void Serve(Connection* connection);
  // Joins the threads of connections that have ended.
  void ReapLocked();

  const int listen_fd_;
  const int port_;
  const Handler handler_;
  const std::shared_ptr<StopSignal> stop_;
  std::thread accept_thread_;
  std::mutex mutex_;
  std::list<Connection> connections_;
  bool stopped_ = false;
};

}  // namespace herd::dashboard
