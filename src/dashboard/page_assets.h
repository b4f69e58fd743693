// The dashboard's page (src/dashboard/page/: index.html, dashboard.css, favicon.svg,
// dashboard.js), embedded in the binary at build time: CMake turns each
// file into bytes of a generated source (embed_page.cmake), so the page
// needs no web build step and no files beside the binary.
//
// Immutable data: thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace herd::dashboard {

struct PageAsset {
  const char* path;          // "/index.html", "/dashboard.js", "/dashboard.css"
  const char* content_type;  // from the file's extension
  const unsigned char* data;
  size_t size;
};

// The asset served at `path`, or nullptr.
const PageAsset* FindPageAsset(std::string_view path);

}  // namespace herd::dashboard
