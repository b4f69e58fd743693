// A plain-text table for terminal output: columns sized to their content.
#pragma once

#include <string>
#include <vector>

namespace herd::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<std::string> cells);
  // The table with a header line; cells longer than `max_width` are cut with "...".
  std::string Render(size_t max_width = 60) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace herd::cli
