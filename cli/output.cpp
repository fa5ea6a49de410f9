#include "cli/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>

#include "cli/errors.h"

namespace plcctl {

namespace {

// Terminal columns taken by UTF-8 text, counting one per code point (names
// and descriptions may be non-ASCII; wide characters are rare enough here).
std::size_t displayWidth(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

std::string indent(std::string_view text, std::string_view prefix) {
  std::string result;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find('\n', start), text.size());
    if (start > 0) result += '\n';
    result += std::string(prefix) + std::string(text.substr(start, end - start));
    start = end + 1;
  }
  return result;
}

// protobuf indents pretty JSON by one space per level; scripts do not care,
// people read two more easily. Strings never hold a raw newline (JSON escapes
// it), so every line's leading spaces are indentation.
std::string doubleIndent(std::string_view json) {
  std::string result;
  result.reserve(json.size() * 5 / 4);
  bool line_start = true;
  for (char c : json) {
    if (line_start && c == ' ') {
      result += "  ";
      continue;
    }
    line_start = c == '\n';
    result += c;
  }
  return result;
}

std::string upper(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return text;
}

}  // namespace

OutputFormat parseOutputFormat(std::string_view text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  throw UsageError("-o/--output: expected table or json, got '" + std::string(text) + "'");
}

std::string toJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    throw LocalError("cannot print " + message.GetTypeName() +
                     " as JSON: " + std::string(status.message()));
  }
  while (!json.empty() && json.back() == '\n') json.pop_back();
  return pretty ? doubleIndent(json) : json;
}

Table::Table(std::vector<std::string> headers) {
  for (std::string& header : headers) header = upper(std::move(header));
  rows_.push_back(std::move(headers));
}

void Table::addRow(std::vector<std::string> cells) {
  cells.resize(rows_.front().size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out) const {
  std::vector<std::size_t> widths(rows_.front().size(), 0);
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], displayWidth(row[i]));
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - displayWidth(row[i]) + 2, ' ');
    }
    out << line << '\n';
  }
}

void Details::add(std::string label, std::string value) {
  lines_.emplace_back(std::move(label), std::move(value));
}

void Details::print(std::ostream& out) const {
  std::size_t width = 0;
  for (const auto& [label, value] : lines_) width = std::max(width, label.size() + 1);
  const std::string pad(width + 1, ' ');
  for (const auto& [label, value] : lines_) {
    const std::string head = label + ":" + std::string(width - label.size(), ' ');
    out << head << indent(value.empty() ? "-" : value, pad).substr(pad.size()) << '\n';
  }
}

void Printer::done(const google::protobuf::Message& response, std::string_view sentence) {
  if (json()) {
    printJson(response);
  } else {
    out_ << sentence << '\n';
  }
}

void Printer::printJson(const google::protobuf::Message& message) {
  out_ << toJson(message, /*pretty=*/true) << '\n';
}

void Printer::printJsonArray(const std::vector<const google::protobuf::Message*>& messages) {
  if (messages.empty()) {
    out_ << "[]\n";
    return;
  }
  out_ << "[\n";
  for (std::size_t i = 0; i < messages.size(); ++i) {
    out_ << indent(toJson(*messages[i], /*pretty=*/true), "  ")
         << (i + 1 < messages.size() ? ",\n" : "\n");
  }
  out_ << "]\n";
}

void Printer::printJsonObject(
    std::initializer_list<std::pair<std::string_view, const google::protobuf::Message*>> members) {
  out_ << "{\n";
  std::size_t i = 0;
  for (const auto& [name, message] : members) {
    // Member names are plcctl's own identifiers, never user input: no escaping needed.
    const std::string value = indent(toJson(*message, /*pretty=*/true), "  ");
    out_ << "  \"" << name << "\": " << value.substr(2) << (++i < members.size() ? ",\n" : "\n");
  }
  out_ << "}\n";
}

void Printer::fields(const std::vector<std::pair<std::string, std::string>>& values) {
  if (!json()) {
    Details details;
    for (const auto& [label, value] : values) details.add(label, value);
    details.print(out_);
    return;
  }
  out_ << "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    out_ << (i == 0 ? "\n  " : ",\n  ") << jsonQuote(values[i].first) << ": "
         << jsonQuote(values[i].second);
  }
  out_ << "\n}\n";
}

void Printer::printStrings(const std::vector<std::string>& values, std::string_view column,
                           std::string_view plural) {
  if (json()) {
    out_ << "[";
    for (std::size_t i = 0; i < values.size(); ++i) {
      out_ << (i == 0 ? "\n  " : ",\n  ") << jsonQuote(values[i]);
    }
    out_ << (values.empty() ? "]\n" : "\n]\n");
    return;
  }
  if (values.empty()) {
    err_ << "no " << plural << " found\n";
    return;
  }
  Table table({std::string(column)});
  for (const std::string& value : values) table.addRow({value});
  table.print(out_);
}

void Printer::printJsonLine(const google::protobuf::Message& message) {
  out_ << toJson(message, /*pretty=*/false) << std::endl;
}

std::string jsonQuote(std::string_view text) {
  std::string quoted = "\"";
  for (char c : text) {
    switch (c) {
      case '"':
        quoted += "\\\"";
        break;
      case '\\':
        quoted += "\\\\";
        break;
      case '\n':
        quoted += "\\n";
        break;
      case '\r':
        quoted += "\\r";
        break;
      case '\t':
        quoted += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          quoted += "\\u00";
          quoted += kHex[(c >> 4) & 0xf];
          quoted += kHex[c & 0xf];
        } else {
          quoted += c;
        }
    }
  }
  return quoted + "\"";
}

std::string yesNo(bool value) { return value ? "yes" : "no"; }

std::string orDash(std::string value) { return value.empty() ? "-" : value; }

}  // namespace plcctl
