// Printing results: aligned tables and `label: value` details for people,
// JSON (proto field names, every field present) for scripts.
#pragma once

#include <google/protobuf/message.h>

#include <functional>
#include <initializer_list>
#include <iostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plcctl {

enum class OutputFormat { kTable, kJson };
// "table" or "json"; throws UsageError otherwise.
OutputFormat parseOutputFormat(std::string_view text);

// The message as JSON with proto field names and default-valued fields
// included, so scripts can rely on every field being there.
std::string toJson(const google::protobuf::Message& message, bool pretty);

// Columns of a table with left-aligned cells, two spaces apart.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void addRow(std::vector<std::string> cells);
  void print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// `label: value` lines with the values aligned; further lines of a
// multi-line value are indented to the value column.
class Details {
 public:
  void add(std::string label, std::string value);
  void print(std::ostream& out) const;

 private:
  std::vector<std::pair<std::string, std::string>> lines_;
};

// Where a column appears: in list tables, in the details of one object, or both.
enum class Shown { kEverywhere, kListOnly, kDetailOnly };

template <class T>
struct Column {
  std::string name;  // the proto field name, or close to it; upper-cased as table header
  std::function<std::string(const T&)> value;
  Shown shown = Shown::kEverywhere;
};

// How one message type is shown to people.
template <class T>
struct View {
  std::string plural;  // "sites", for "no sites found"
  std::vector<Column<T>> columns;
};

class Printer {
 public:
  Printer(OutputFormat format, std::ostream& out, std::ostream& err)
      : format_(format), out_(out), err_(err) {}

  bool json() const { return format_ == OutputFormat::kJson; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }

  // A table of items, or a JSON array of them.
  template <class T, class Range>
  void list(const Range& items, const View<T>& view) {
    if (json()) {
      std::vector<const google::protobuf::Message*> messages;
      for (const T& item : items) messages.push_back(&item);
      printJsonArray(messages);
      return;
    }
    if (items.empty()) {
      err_ << "no " << view.plural << " found\n";
      return;
    }
    std::vector<std::string> headers;
    for (const Column<T>& column : view.columns) {
      if (column.shown != Shown::kDetailOnly) headers.push_back(column.name);
    }
    Table table(std::move(headers));
    for (const T& item : items) {
      std::vector<std::string> cells;
      for (const Column<T>& column : view.columns) {
        if (column.shown != Shown::kDetailOnly) cells.push_back(column.value(item));
      }
      table.addRow(std::move(cells));
    }
    table.print(out_);
  }

  // The details of one object, or its JSON.
  template <class T>
  void item(const T& item, const View<T>& view) {
    if (json()) {
      printJson(item);
      return;
    }
    Details details;
    for (const Column<T>& column : view.columns) {
      if (column.shown != Shown::kListOnly) details.add(column.name, column.value(item));
    }
    details.print(out_);
  }

  // Named values computed by plcctl itself (no PLC message): `label: value`
  // lines, or a JSON object of strings.
  void fields(const std::vector<std::pair<std::string, std::string>>& values);

  // A one-column table of plain strings, or a JSON array of them.
  template <class Range>
  void strings(const Range& values, std::string_view column, std::string_view plural) {
    printStrings(std::vector<std::string>(values.begin(), values.end()), column, plural);
  }

  // For calls whose answer carries nothing to show (Empty): a sentence for
  // people, the response as JSON for scripts.
  void done(const google::protobuf::Message& response, std::string_view sentence);

  void printJson(const google::protobuf::Message& message);
  void printJsonArray(const std::vector<const google::protobuf::Message*>& messages);
  // One JSON object whose members are the given messages.
  void printJsonObject(
      std::initializer_list<std::pair<std::string_view, const google::protobuf::Message*>> members);
  void printStrings(const std::vector<std::string>& values, std::string_view column,
                    std::string_view plural);
  // Compact JSON on one line (a stream of updates, one object per line).
  void printJsonLine(const google::protobuf::Message& message);

 private:
  OutputFormat format_;
  std::ostream& out_;
  std::ostream& err_;
};

// Joins a range of strings with `separator`; "-" when empty.
template <class Range>
std::string joinOrDash(const Range& items, std::string_view separator = ",") {
  std::string text;
  for (const auto& item : items) {
    if (!text.empty()) text += separator;
    text += item;
  }
  return text.empty() ? "-" : text;
}

// A JSON string literal with quotes and escapes.
std::string jsonQuote(std::string_view text);
std::string yesNo(bool value);
std::string orDash(std::string value);

}  // namespace plcctl
