#include "cli/table.h"

#include <algorithm>

namespace herd::cli {
namespace {

// Display width, counting UTF-8 continuation bytes as nothing.
size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

std::string Cut(const std::string& text, size_t max_width) {
  if (Width(text) <= max_width) return text;
  std::string cut;
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80 && ++width > max_width - 3) break;
    cut += static_cast<char>(c);
  }
  return cut + "...";
}

}  // namespace

Table::Table(std::vector<std::string> headers) {
  rows_.push_back(std::move(headers));
}

void Table::AddRow(std::vector<std::string> cells) {
  rows_.push_back(std::move(cells));
}

std::string Table::Render(size_t max_width) const {
  std::vector<std::vector<std::string>> cells = rows_;
  std::vector<size_t> widths;
  for (auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) {
      std::replace(row[i].begin(), row[i].end(), '\n', ' ');
      row[i] = Cut(row[i], max_width);
      if (widths.size() <= i) widths.push_back(0);
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - Width(row[i]) + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace herd::cli
