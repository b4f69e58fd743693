#include "orchestrator/parameters.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace herd {
namespace {

// 600 rather than 600.000000; integers exactly up to 2^53.
std::string FormatNumber(double number) {
  if (number == std::floor(number) && std::fabs(number) < 9e15) {
    return std::to_string(static_cast<long long>(number));
  }
  char text[32];
  std::snprintf(text, sizeof text, "%g", number);
  return text;
}

// A default or value as people read it: strings without quotes.
std::string FormatValue(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number()) return FormatNumber(value.get<double>());
  return value.dump();
}

std::string Join(const std::vector<std::string>& parts, const char* separator) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : separator) + part;
  return text;
}

// "0-100", "from -1 to 1", "at least 1", "more than 0 and at most 1000000000", "".
std::string RangeText(const ParameterSpec& parameter) {
  const auto& low = parameter.minimum;
  const auto& high = parameter.maximum;
  if (low && high && !parameter.exclusive_minimum) {
    if (*low >= 0) return FormatNumber(*low) + "-" + FormatNumber(*high);
    return "from " + FormatNumber(*low) + " to " + FormatNumber(*high);
  }
  std::string text;
  if (low) text = (parameter.exclusive_minimum ? "more than " : "at least ") + FormatNumber(*low);
  if (high) text += (text.empty() ? "" : " and ") + std::string("at most ") + FormatNumber(*high);
  return text;
}

// "in 0-100", but "at least 1" as it is.
std::string InRangeText(const std::string& range) {
  return range[0] >= '0' && range[0] <= '9' ? "in " + range : range;
}

const char* TypeNoun(ParameterType type) {
  switch (type) {
    case ParameterType::kString: return "a string";
    case ParameterType::kInteger: return "an integer";
    case ParameterType::kNumber: return "a number";
    case ParameterType::kBoolean: return "true or false";
    case ParameterType::kStringList: return "a list of strings";
    case ParameterType::kObject: return "an object";
    case ParameterType::kObjectList: return "a list of objects";
  }
  return "a value";
}

std::string ArgumentName(const ParameterSpec& parameter, ArgumentNames names) {
  if (names == ArgumentNames::kCommandLine && parameter.cli != nullptr) return parameter.cli;
  return std::string("argument \"") + parameter.name + "\"";
}

// Whole numbers print as integers: "maximum": 600, not 600.0.
json Normalized(const json& value) {
  if (!value.is_number_float()) return value;
  double number = value.get<double>();
  if (number == std::floor(number) && std::fabs(number) < 9e15) {
    return json(static_cast<long long>(number));
  }
  return value;
}

// The given value in an error, cut short: a model may send a whole file.
std::string Given(const json& value) {
  std::string text = Normalized(value).dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

Status Mismatch(const ParameterSpec& parameter, ArgumentNames names, const std::string& allowed,
                const json& value) {
  return Status::InvalidArgument(ArgumentName(parameter, names) + " must be " + allowed + ", not " +
                                 Given(value));
}

bool InRange(const ParameterSpec& parameter, double value) {
  if (parameter.minimum) {
    if (parameter.exclusive_minimum ? !(value > *parameter.minimum)
                                    : !(value >= *parameter.minimum)) {
      return false;
    }
  }
  return !parameter.maximum || value <= *parameter.maximum;
}

// An integer within the parameter's range (and a long long's), as a JSON
// integer. Range first for floats: converting an out-of-range double is
// undefined.
Result<json> CheckInteger(const ParameterSpec& parameter, ArgumentNames names, const json& value) {
  std::string range = RangeText(parameter);
  std::string allowed = range.empty() ? "an integer" : "an integer " + InRangeText(range);
  constexpr double kLargest = 9223372036854775807.0;
  if (value.is_number_unsigned() &&
      value.get<unsigned long long>() > std::numeric_limits<long long>::max()) {
    return Mismatch(parameter, names, allowed, value);
  }
  if (value.is_number_integer()) {
    long long integer = value.get<long long>();
    if (!InRange(parameter, static_cast<double>(integer))) {
      return Mismatch(parameter, names, allowed, value);
    }
    return json(integer);
  }
  if (!value.is_number_float()) return Mismatch(parameter, names, allowed, value);
  double number = value.get<double>();
  if (!InRange(parameter, number) || !(std::fabs(number) < kLargest) ||
      number != std::floor(number)) {
    return Mismatch(parameter, names, allowed, value);
  }
  return json(static_cast<long long>(number));
}

Result<json> CheckNumber(const ParameterSpec& parameter, ArgumentNames names, const json& value) {
  std::string range = RangeText(parameter);
  std::string allowed = range.empty() ? "a number" : "a number " + InRangeText(range);
  if (!value.is_number() || !InRange(parameter, value.get<double>())) {
    return Mismatch(parameter, names, allowed, value);
  }
  return value;
}

Result<json> CheckString(const ParameterSpec& parameter, ArgumentNames names, const json& value) {
  if (!value.is_string()) return Mismatch(parameter, names, "a string", value);
  if (parameter.values.empty()) return value;
  for (const std::string& allowed : parameter.values) {
    if (value.get<std::string>() == allowed) return value;
  }
  return Mismatch(parameter, names, "one of " + Alternatives(parameter.values, ", "), value);
}

Result<json> CheckList(const ParameterSpec& parameter, ArgumentNames names, const json& value) {
  bool strings = parameter.type == ParameterType::kStringList;
  if (!value.is_array()) return Mismatch(parameter, names, TypeNoun(parameter.type), value);
  for (const json& element : value) {
    if (strings ? !element.is_string() : !element.is_object()) {
      return Mismatch(parameter, names, TypeNoun(parameter.type), value);
    }
  }
  return value;
}

Result<json> CheckValue(const ParameterSpec& parameter, ArgumentNames names, const json& value) {
  switch (parameter.type) {
    case ParameterType::kString: return CheckString(parameter, names, value);
    case ParameterType::kInteger: return CheckInteger(parameter, names, value);
    case ParameterType::kNumber: return CheckNumber(parameter, names, value);
    case ParameterType::kBoolean:
      if (!value.is_boolean()) return Mismatch(parameter, names, "true or false", value);
      return value;
    case ParameterType::kStringList:
    case ParameterType::kObjectList: return CheckList(parameter, names, value);
    case ParameterType::kObject:
      if (!value.is_object()) return Mismatch(parameter, names, "an object", value);
      return value;
  }
  return value;
}

const char* SchemaType(ParameterType type) {
  switch (type) {
    case ParameterType::kString: return "string";
    case ParameterType::kInteger: return "integer";
    case ParameterType::kNumber: return "number";
    case ParameterType::kBoolean: return "boolean";
    case ParameterType::kStringList:
    case ParameterType::kObjectList: return "array";
    case ParameterType::kObject: return "object";
  }
  return "string";
}

}  // namespace

std::string Alternatives(const std::vector<std::string>& values, const char* last_separator) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) text += i + 1 == values.size() ? last_separator : ", ";
    text += values[i];
  }
  return text;
}

json PropertySchema(const ParameterSpec& parameter) {
  // What the schema's keywords say in words too: models read descriptions.
  std::vector<std::string> notes;
  if (parameter.max_length) {
    notes.push_back("at most " + std::to_string(*parameter.max_length) + " bytes");
  }
  if (!parameter.default_value.is_null()) {
    notes.push_back("default " + FormatValue(parameter.default_value));
  }
  std::string description = parameter.description;
  if (!notes.empty()) description += " (" + Join(notes, "; ") + ")";
  json schema = {{"type", SchemaType(parameter.type)}, {"description", description}};
  if (!parameter.default_value.is_null()) schema["default"] = Normalized(parameter.default_value);
  if (parameter.minimum) {
    schema[parameter.exclusive_minimum ? "exclusiveMinimum" : "minimum"] =
        Normalized(*parameter.minimum);
  }
  if (parameter.maximum) schema["maximum"] = Normalized(*parameter.maximum);
  if (!parameter.values.empty()) schema["enum"] = parameter.values;
  if (parameter.max_length) schema["maxLength"] = *parameter.max_length;
  if (parameter.type == ParameterType::kStringList) schema["items"] = {{"type", "string"}};
  if (parameter.type == ParameterType::kObjectList) {
    schema["items"] = parameter.items.is_null() ? json{{"type", "object"}} : parameter.items;
  }
  return schema;
}

json InputSchema(const ParameterList& parameters) {
  json properties = json::object();
  json required = json::array();
  for (const ParameterSpec& parameter : parameters) {
    properties[parameter.name] = PropertySchema(parameter);
    if (parameter.required) required.push_back(parameter.name);
  }
  json schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = std::move(required);
  return schema;
}

std::string HelpText(const ParameterSpec& parameter) {
  std::vector<std::string> notes;
  if (!parameter.values.empty()) notes.push_back(Alternatives(parameter.values, " or "));
  std::string range = RangeText(parameter);
  if (!range.empty()) notes.push_back(range);
  if (parameter.max_length) {
    notes.push_back("at most " + std::to_string(*parameter.max_length) + " bytes");
  }
  if (parameter.type == ParameterType::kObject) notes.push_back("a JSON object");
  if (parameter.type == ParameterType::kObjectList) notes.push_back("a JSON array of objects");
  if (!parameter.default_value.is_null()) {
    notes.push_back("default " + FormatValue(parameter.default_value));
  }
  std::string text = parameter.description;
  if (!notes.empty()) text += " (" + Join(notes, "; ") + ")";
  return text;
}

Result<CheckedArguments> CheckArguments(const ParameterList& parameters, const json& arguments,
                                        ArgumentNames names) {
  json checked = json::object();
  for (const ParameterSpec& parameter : parameters) {
    const json* value = nullptr;
    if (arguments.is_object()) {
      auto found = arguments.find(parameter.name);
      if (found != arguments.end() && !found->is_null()) value = &*found;
    }
    if (value == nullptr) {
      if (!parameter.required) continue;
      return Status::InvalidArgument("missing required " + ArgumentName(parameter, names) + ": " +
                                     parameter.description);
    }
    Result<json> valid = CheckValue(parameter, names, *value);
    if (!valid.ok()) return valid.status();
    checked[parameter.name] = std::move(valid).value();
  }
  return CheckedArguments(parameters, std::move(checked));
}

// ---- CheckedArguments -------------------------------------------------------

const json* CheckedArguments::Lookup(const char* name, ParameterType type) const {
  for (const ParameterSpec& parameter : *parameters_) {
    if (std::string(parameter.name) != name) continue;
    bool compatible = parameter.type == type ||
                      (type == ParameterType::kNumber && parameter.type == ParameterType::kInteger);
    if (!compatible) {
      throw std::logic_error(std::string("parameter \"") + name + "\" read as the wrong type");
    }
    auto found = values_.find(name);
    return found == values_.end() ? nullptr : &*found;
  }
  throw std::logic_error(std::string("parameter \"") + name + "\" is not declared");
}

bool CheckedArguments::Has(const char* name) const {
  return values_.contains(name);
}

const json* CheckedArguments::Find(const char* name) const {
  for (const ParameterSpec& parameter : *parameters_) {
    if (std::string(parameter.name) == name) return Lookup(name, parameter.type);
  }
  throw std::logic_error(std::string("parameter \"") + name + "\" is not declared");
}

void CheckedArguments::Get(const char* name, std::string* field) const {
  if (const json* value = Lookup(name, ParameterType::kString)) *field = value->get<std::string>();
}

void CheckedArguments::Get(const char* name, std::optional<std::string>* field) const {
  if (const json* value = Lookup(name, ParameterType::kString)) *field = value->get<std::string>();
}

void CheckedArguments::Get(const char* name, bool* field) const {
  if (const json* value = Lookup(name, ParameterType::kBoolean)) *field = value->get<bool>();
}

void CheckedArguments::Get(const char* name, int* field) const {
  std::optional<long long> value;
  Get(name, &value);
  if (!value) return;
  if (*value < std::numeric_limits<int>::min() || *value > std::numeric_limits<int>::max()) {
    throw std::logic_error(std::string("parameter \"") + name + "\" allows more than an int");
  }
  *field = static_cast<int>(*value);
}

void CheckedArguments::Get(const char* name, std::optional<int>* field) const {
  if (!Has(name)) {
    Lookup(name, ParameterType::kInteger);  // still declared, and an integer
    return;
  }
  int value = 0;
  Get(name, &value);
  *field = value;
}

void CheckedArguments::Get(const char* name, std::optional<long long>* field) const {
  if (const json* value = Lookup(name, ParameterType::kInteger)) *field = value->get<long long>();
}

void CheckedArguments::Get(const char* name, std::optional<size_t>* field) const {
  std::optional<long long> value;
  Get(name, &value);
  if (!value) return;
  if (*value < 0) throw std::logic_error(std::string("parameter \"") + name + "\" allows < 0");
  *field = static_cast<size_t>(*value);
}

void CheckedArguments::Get(const char* name, double* field) const {
  if (const json* value = Lookup(name, ParameterType::kNumber)) *field = value->get<double>();
}

void CheckedArguments::Get(const char* name, std::optional<double>* field) const {
  if (const json* value = Lookup(name, ParameterType::kNumber)) *field = value->get<double>();
}

void CheckedArguments::Get(const char* name, std::vector<std::string>* field) const {
  if (const json* value = Lookup(name, ParameterType::kStringList)) {
    *field = value->get<std::vector<std::string>>();
  }
}

void CheckedArguments::Get(const char* name, json* field) const {
  if (const json* value = Find(name)) *field = *value;
}

}  // namespace herd
