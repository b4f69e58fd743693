#include "dashboard/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>

namespace herd::dashboard {
namespace {

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 9110 token characters, for methods and header names.
bool IsToken(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) continue;
    if (std::strchr("!#$%&'*+-.^_`|~", c) == nullptr || c == '\0') return false;
  }
  return true;
}

bool HasControlCharacters(std::string_view text) {
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
  }
  return false;
}

class SocketWriter : public StreamWriter {
 public:
  SocketWriter(int fd, const StopSignal& stop) : fd_(fd), stop_(stop) {}
  bool Write(std::string_view data) override {
    if (stop_.stopped()) return false;
    while (!data.empty()) {
      ssize_t sent = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (sent < 0 && errno == EINTR) continue;
      if (sent <= 0) return false;
      data.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }
  const StopSignal& stopping() const override { return stop_; }

 private:
  const int fd_;
  const StopSignal& stop_;
};

// Waits until `fd` is readable, the server stops, or `timeout_ms`; true when readable.
bool WaitReadable(int fd, const StopSignal& stop, int timeout_ms) {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop.fd(), POLLIN, 0}};
  for (;;) {
    int ready = ::poll(fds, 2, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    if (fds[1].revents != 0) return false;
    return fds[0].revents != 0;
  }
}

// Reads into `buffer` until it holds at least `size` bytes; false on EOF,
// error, stop or idle timeout.
bool ReadAtLeast(int fd, const StopSignal& stop, std::string* buffer, size_t size) {
  char chunk[16 * 1024];
  while (buffer->size() < size) {
    if (!WaitReadable(fd, stop, HttpServer::kIdleTimeoutMs)) return false;
    ssize_t got = ::recv(fd, chunk, sizeof chunk, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer->append(chunk, static_cast<size_t>(got));
  }
  return true;
}

}  // namespace

const std::string* HttpRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return &value;
  }
  return nullptr;
}

std::string HttpRequest::QueryParameter(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    size_t equals = pair.find('=');
    if (PercentDecode(pair.substr(0, equals)) != name) continue;
    return equals == std::string_view::npos ? "" : PercentDecode(pair.substr(equals + 1));
  }
  return "";
}

std::string PercentDecode(std::string_view text) {
  std::string decoded;
  decoded.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      decoded += ' ';
    } else if (text[i] == '%' && i + 2 < text.size() &&
               std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      decoded += static_cast<char>(std::stoi(std::string(text.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      decoded += text[i];
    }
  }
  return decoded;
}

HttpResponse HttpResponse::Text(int status, std::string text) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(text);
  if (!response.body.empty() && response.body.back() != '\n') response.body += '\n';
  response.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  return response;
}

HttpResponse HttpResponse::Json(int status, std::string json_text) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(json_text);
  response.headers.emplace_back("Content-Type", "application/json; charset=utf-8");
  return response;
}

HttpResponse& HttpResponse::With(std::string name, std::string value) {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
  }
  return "Status";
}

Result<HttpRequest> ParseRequestHead(std::string_view head, int* status_code) {
  auto fail = [&](int code, std::string message) -> Status {
    *status_code = code;
    return Status::InvalidArgument(std::move(message));
  };
  if (head.size() > HttpServer::kMaxHeadBytes) {
    return fail(
        431, "the request's head is over " + std::to_string(HttpServer::kMaxHeadBytes) + " bytes");
  }
  HttpRequest request;
  size_t line_end = head.find("\r\n");
  std::string_view line = head.substr(0, line_end);
  std::string_view rest = line_end == std::string_view::npos ? "" : head.substr(line_end + 2);
  size_t first = line.find(' ');
  size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last) {
    return fail(400, "the request line is not METHOD TARGET HTTP/1.1");
  }
  request.method = std::string(line.substr(0, first));
  request.target = std::string(line.substr(first + 1, last - first - 1));
  std::string_view version = line.substr(last + 1);
  if (!IsToken(request.method)) return fail(400, "the request's method is not a token");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    return fail(505, "only HTTP/1.1 is served, not " + std::string(version));
  }
  if (request.target.empty() || request.target[0] != '/' || HasControlCharacters(request.target) ||
      request.target.find(' ') != std::string::npos) {
    return fail(400, "the request's target must be a path starting with /");
  }
  size_t question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);

  while (!rest.empty()) {
    size_t end = rest.find("\r\n");
    std::string_view header = rest.substr(0, end);
    rest = end == std::string_view::npos ? "" : rest.substr(end + 2);
    if (header.empty()) continue;
    if (header[0] == ' ' || header[0] == '\t') {
      return fail(400, "obsolete header line folding is not accepted");
    }
    size_t colon = header.find(':');
    if (colon == std::string_view::npos || !IsToken(header.substr(0, colon))) {
      return fail(400, "a header line is not NAME: VALUE");
    }
    std::string_view value = Trim(header.substr(colon + 1));
    if (HasControlCharacters(value)) return fail(400, "a header value has control characters");
    if (request.headers.size() >= 100) return fail(431, "the request has over 100 headers");
    request.headers.emplace_back(Lower(header.substr(0, colon)), std::string(value));
  }
  return request;
}

std::string SerializeResponseHead(const HttpResponse& response, bool keep_alive) {
  std::string head =
      "HTTP/1.1 " + std::to_string(response.status) + " " + ReasonPhrase(response.status) + "\r\n";
  for (const auto& [name, value] : response.headers) head += name + ": " + value + "\r\n";
  if (!response.stream) head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  head += keep_alive && !response.stream ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  head += "\r\n";
  return head;
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, int port,
                                                      Handler handler) {
  if (port < 0 || port > 65535) {
    return Status::InvalidArgument("port " + std::to_string(port) + " is not 0..65535");
  }
  sockaddr_in bound{};
  bound.sin_family = AF_INET;
  bound.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &bound.sin_addr) != 1) {
    return Status::InvalidArgument(address + " is not an IPv4 address");
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status::FromErrno("cannot create a socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&bound), sizeof bound) != 0) {
    int error = errno;
    ::close(fd);
    Status status =
        Status::FromErrno("cannot listen on " + address + ":" + std::to_string(port), error);
    if (error == EADDRINUSE) {
      return status.WithContext("another program uses port " + std::to_string(port) +
                                ": pick another with --port, or --port 0 for any free one");
    }
    return status;
  }
  if (::listen(fd, 64) != 0) {
    int error = errno;
    ::close(fd);
    return Status::FromErrno("cannot listen on " + address, error);
  }
  socklen_t length = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  Result<std::shared_ptr<StopSignal>> stop = StopSignal::Create();
  if (!stop.ok()) {
    ::close(fd);
    return stop.status();
  }
  std::unique_ptr<HttpServer> server(
      new HttpServer(fd, ntohs(bound.sin_port), std::move(handler), std::move(stop).value()));
  try {
    server->accept_thread_ = std::thread([raw = server.get()] { raw->AcceptLoop(); });
  } catch (const std::system_error& error) {
    return Status::IOError(std::string("cannot start the dashboard's accept thread: ") +
                           error.what());
  }
  return server;
}

HttpServer::HttpServer(int listen_fd, int port, Handler handler, std::shared_ptr<StopSignal> stop)
    : listen_fd_(listen_fd), port_(port), handler_(std::move(handler)), stop_(std::move(stop)) {}

HttpServer::~HttpServer() {
  Stop();
  ::close(listen_fd_);
}

void HttpServer::Stop() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (stopped_) return;
    stopped_ = true;
    stop_->Stop();
    // Unblocks a thread in send(2) to a peer that does not read.
    for (Connection& connection : connections_) {
      if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_RDWR);
    }
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  // No new connections now; each thread ends on the stop signal.
  std::list<Connection> connections;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    connections.swap(connections_);
  }
  for (Connection& connection : connections) {
    if (connection.thread.joinable()) connection.thread.join();
  }
}

size_t HttpServer::OpenConnections() {
  std::lock_guard<std::mutex> guard(mutex_);
  ReapLocked();
  return connections_.size();
}

void HttpServer::ReapLocked() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done) {
      if (it->thread.joinable()) it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::AcceptLoop() {
  for (;;) {
    if (!WaitReadable(listen_fd_, *stop_, -1)) return;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      spdlog::warn("dashboard: accept failed: {}", std::strerror(errno));
      // Out of descriptors: wait for a connection to end rather than spin.
      if (!WaitReadable(stop_->fd(), *stop_, 100)) continue;
      return;
    }
    // A reply that cannot be sent in this long is given up (a stalled peer).
    timeval send_timeout{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> guard(mutex_);
    ReapLocked();
    if (stopped_ || connections_.size() >= kMaxConnections) {
      HttpResponse busy = HttpResponse::Text(
          503, "the dashboard has " + std::to_string(kMaxConnections) +
                   " connections open, the most it serves: close a page and reload");
      std::string reply = SerializeResponseHead(busy, false) + busy.body;
      ssize_t ignored = ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)ignored;
      ::close(fd);
      continue;
    }
    Connection& connection = connections_.emplace_back();
    connection.fd = fd;
    try {
      connection.thread = std::thread([this, &connection] { Serve(&connection); });
    } catch (const std::system_error& error) {
      spdlog::warn("dashboard: cannot start a connection thread: {}", error.what());
      ::close(fd);
      connections_.pop_back();
    }
  }
}

void HttpServer::Serve(Connection* connection) {
  const int fd = connection->fd;
  std::string buffer;
  SocketWriter writer(fd, *stop_);
  for (bool keep_alive = true; keep_alive && !stop_->stopped();) {
    size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (buffer.size() > kMaxHeadBytes) break;
      if (!ReadAtLeast(fd, *stop_, &buffer, buffer.size() + 1)) {
        keep_alive = false;
        break;
      }
    }
    if (!keep_alive) break;
    HttpResponse response;
    int code = 400;
    Result<HttpRequest> parsed =
        head_end == std::string::npos
            ? Result<HttpRequest>(Status::InvalidArgument("too long"))
            : ParseRequestHead(std::string_view(buffer).substr(0, head_end), &code);
    if (head_end == std::string::npos) code = 431;
    if (!parsed.ok()) {
      response = HttpResponse::Text(code, parsed.status().message());
      writer.Write(SerializeResponseHead(response, false) + response.body);
      break;
    }
    HttpRequest request = std::move(parsed).value();
    buffer.erase(0, head_end + 4);

    const std::string* length_text = request.Header("content-length");
    size_t length = 0;
    if (request.Header("transfer-encoding") != nullptr) {
      response = HttpResponse::Text(411, "send the body with a Content-Length, not chunked");
      writer.Write(SerializeResponseHead(response, false) + response.body);
      break;
    }
    if (length_text != nullptr) {
      auto [end, error] =
          std::from_chars(length_text->data(), length_text->data() + length_text->size(), length);
      if (error != std::errc() || end != length_text->data() + length_text->size()) {
        response = HttpResponse::Text(400, "Content-Length is not a number");
        writer.Write(SerializeResponseHead(response, false) + response.body);
        break;
      }
      if (length > kMaxBodyBytes) {
        response =
            HttpResponse::Text(413, "the body is over " + std::to_string(kMaxBodyBytes) + " bytes");
        writer.Write(SerializeResponseHead(response, false) + response.body);
        break;
      }
    }
    if (!ReadAtLeast(fd, *stop_, &buffer, length)) break;
    request.body = buffer.substr(0, length);
    buffer.erase(0, length);

    const std::string* connection_header = request.Header("connection");
    keep_alive = connection_header == nullptr || Lower(*connection_header) != "close";
    try {
      response = handler_(request);
    } catch (const std::exception& error) {
      spdlog::error("dashboard: {} {} failed: {}", request.method, request.path, error.what());
      response = HttpResponse::Text(500, "the dashboard failed on this request; see its log");
    }
    if (!writer.Write(SerializeResponseHead(response, keep_alive))) break;
    if (response.stream) {
      response.stream(writer);
      break;
    }
    if (request.method != "HEAD" && !writer.Write(response.body)) break;
  }
  std::lock_guard<std::mutex> guard(mutex_);
  if (!stopped_) ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  connection->fd = -1;
  connection->done = true;
}

}  // namespace herd::dashboard
