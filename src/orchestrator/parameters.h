// Parameters: a request's inputs declared once, as data, for every surface.
//
// Each operation's request (orchestrator/requests.h) lists its parameters
// in a table of ParameterSpec rows: name, type, description, the default
// shown to people, range, allowed values, whether it is required, and its
// command-line spelling. From that one table come
//   - the MCP tool's inputSchema (InputSchema),
//   - the CLI option's help text (HelpText; cli/ adds the CLI11 options),
//   - the checks every call goes through (CheckArguments): type, range,
//     allowed values, required. The CLI turns its parsed options into the
//     same JSON argument object an MCP client sends and checks it with the
//     same code, so the two surfaces cannot disagree.
// A row refers to the constant it documents (agents::kMaxKillGraceSeconds,
// registry::Limits, registry::FindingSeverities()...), never a copy of it.
//
// Not checked here: string lengths (max_length). The layers below refuse
// an over-long filter or message with advice specific to it, from the same
// constants; the row only states the limit in the schema and help.
//
// Plain data and pure functions: thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

namespace herd {

using nlohmann::json;

enum class ParameterType {
  kString,
  kInteger,  // a JSON integer, or a number with no fraction (5.0)
  kNumber,   // any JSON number
  kBoolean,
  kStringList,  // an array of strings
  kObject,      // any JSON object; on the command line, JSON text
  kObjectList,  // an array of objects shaped as `items`; on the command line, JSON text
};

struct ParameterSpec {
  const char* name;  // the JSON argument name, e.g. "max_agents"
  ParameterType type;
  std::string description = {};  // what it is; defaults, ranges and values are added where shown
  bool required = false;
  // The value used when the argument is absent, for people (schema and
  // help). The request struct's member initializer applies it, and the row
  // reads it from there (or from the constant both use). Null: none shown.
  json default_value = nullptr;
  std::optional<double> minimum = {};     // kInteger and kNumber: inclusive unless...
  bool exclusive_minimum = false;         // ...the minimum itself is refused (a cost > 0)
  std::optional<double> maximum = {};     // inclusive
  std::vector<std::string> values = {};   // kString: only these, if not empty
  std::optional<size_t> max_length = {};  // kString, in bytes: documented (see above)
  json items = nullptr;                   // kObjectList: the JSON Schema of one element
  // The command line's spelling: "--flag" for an option, a bare name for a
  // positional, nullptr when only MCP clients give it.
  const char* cli = nullptr;
};

using ParameterList = std::vector<ParameterSpec>;

// How errors name an argument: as MCP clients send it (argument "max_agents")
// or as a person types it (--max-agents).
enum class ArgumentNames { kJson, kCommandLine };

// The MCP inputSchema: {"type":"object","properties":{...},"required":[...]}
// ("required" only when some are).
json InputSchema(const ParameterList& parameters);

// One parameter's JSON Schema (type, description, default, range, enum...).
json PropertySchema(const ParameterSpec& parameter);

// The CLI help text: the description, then what is allowed and the default,
// e.g. "agents in the task's lifetime (1 to 100000; default 45)".
std::string HelpText(const ParameterSpec& parameter);

// Arguments that passed CheckArguments: every value present has its
// parameter's type and lies in its range and values; an absent (or null)
// argument is absent. The Get overloads copy a present value into `*field`
// and leave it alone otherwise, so the request struct's initializer stays
// the default. Asking for a name the list does not declare, or as the wrong
// type, is a programming error: std::logic_error. It keeps a pointer to
// the list, which must outlive it (the request tables are static).
class CheckedArguments {
 public:
  CheckedArguments(const ParameterList& parameters, json values)
      : parameters_(&parameters), values_(std::move(values)) {}

  bool Has(const char* name) const;
  // The checked value, or nullptr when absent; for kObject and kObjectList.
  const json* Find(const char* name) const;

  void Get(const char* name, std::string* field) const;
  void Get(const char* name, std::optional<std::string>* field) const;
  void Get(const char* name, bool* field) const;
  void Get(const char* name, int* field) const;
  void Get(const char* name, std::optional<int>* field) const;
  void Get(const char* name, std::optional<long long>* field) const;
  void Get(const char* name, std::optional<size_t>* field) const;
  void Get(const char* name, double* field) const;
  void Get(const char* name, std::optional<double>* field) const;
  void Get(const char* name, std::vector<std::string>* field) const;
  void Get(const char* name, json* field) const;

  // The checked arguments as one JSON object (absent ones left out).
  const json& values() const { return values_; }

 private:
  const json* Lookup(const char* name, ParameterType type) const;

  const ParameterList* parameters_;
  json values_;
};

// Checks `arguments` (a JSON object, or null for none) against
// `parameters`. Arguments the list does not declare are ignored (clients
// may send more). An error is InvalidArgument naming the argument, what is
// allowed, and the value given, e.g.
//   argument "progress" must be an integer from 0 to 100, not 101
//   --priority must be one of P0, P1, P2, P3, P4, not "P9"
Result<CheckedArguments> CheckArguments(const ParameterList& parameters, const json& arguments,
                                        ArgumentNames names = ArgumentNames::kJson);

// "a, b or c" (with `last_separator` " or "), for texts that list what is
// allowed.
std::string Alternatives(const std::vector<std::string>& values,
                         const char* last_separator = " or ");

}  // namespace herd
