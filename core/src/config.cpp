// YAML tree <-> yaml-cpp, scalar conversion with precise errors, overrides and emission.
#include "ewa/core/config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_set>

namespace ewa::config {
namespace {

/// `text` on one line: control characters escaped (\n, \t, \xNN), at most `max` bytes.
std::string one_line(const std::string& text, size_t max) {
  std::string out;
  for (char ch : text) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string format_error(const std::string& file, int line, const std::string& key_path,
                         const std::string& message) {
  std::ostringstream os;
  os << (file.empty() ? std::string("<config>") : file);
  if (line > 0) os << ":" << line;
  if (!key_path.empty()) os << ": " << one_line(key_path, 200);
  os << ": " << one_line(message, 1000);
  if (line < 0) os << " (set on the command line with --set)";
  return os.str();
}

// Limits on what one config may expand to. yaml-cpp shares the node of an anchor between its
// aliases, but the copy below expands them: without a budget, nested aliases ("billion
// laughs") grow exponentially, and an anchor used inside itself never ends.
constexpr int64_t kMaxConfigNodes = 20000;  // the largest shipped config has < 200; ~100 x headroom
constexpr int kMaxConfigDepth = 64;
constexpr size_t kMaxConfigFileBytes = 16u << 20;
constexpr size_t kMaxConfigKeyBytes = 200;  // written back quoted, \xNN-escaped: < 1024 characters

struct YamlBudget {
  int64_t nodes = 0;
};

Node from_yaml(const YAML::Node& y, YamlBudget& budget, int depth) {
  Node n;
  n.line = y.Mark().line >= 0 ? y.Mark().line + 1 : 0;
  if (++budget.nodes > kMaxConfigNodes) {
    throw ConfigError("", n.line, "", "the document expands to more than " + std::to_string(kMaxConfigNodes) +
                                          " values (nested or self-referencing aliases?)");
  }
  if (depth > kMaxConfigDepth) {
    throw ConfigError("", n.line, "", "nesting deeper than " + std::to_string(kMaxConfigDepth) +
                                          " levels (a self-referencing alias?)");
  }
  switch (y.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      n.kind = Node::Kind::kNull;
      break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::kScalar;
      n.scalar = y.Scalar();
      n.quoted = y.Tag() == "!";  // yaml-cpp tags quoted scalars with "!"
      if (!n.quoted && (n.scalar == "~" || n.scalar == "null" || n.scalar == "Null" || n.scalar == "NULL")) {
        n.kind = Node::Kind::kNull;
        n.scalar.clear();
      }
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::kSequence;
      for (const auto& item : y) n.items.push_back(from_yaml(item, budget, depth + 1));
      break;
    case YAML::NodeType::Map: {
      n.kind = Node::Kind::kMap;
      std::unordered_set<std::string> seen;  // duplicate check in O(keys), not O(keys^2)
      for (const auto& kv : y) {
        const int key_line = kv.first.Mark().line + 1;
        if (!kv.first.IsScalar()) {
          throw ConfigError("", key_line, "", "map keys must be plain strings, found a " +
                                                  std::string(kv.first.IsMap() ? "map" : kv.first.IsSequence() ? "sequence" : "null") +
                                                  " as a key");
        }
        std::string key = kv.first.Scalar();
        if (key.size() > kMaxConfigKeyBytes) {  // YAML limits implicit keys to 1024 characters
          throw ConfigError("", key_line, "", "map key of " + std::to_string(key.size()) +
                                                  " bytes (at most " + std::to_string(kMaxConfigKeyBytes) + ")");
        }
        if (!seen.insert(key).second) throw ConfigError("", key_line, key, "duplicate key");
        Node child = from_yaml(kv.second, budget, depth + 1);
        child.key_line = key_line;
        if (child.line == 0) child.line = child.key_line;
        n.entries.emplace_back(std::move(key), std::move(child));
      }
      break;
    }
  }
  return n;
}

Node from_yaml(const YAML::Node& y) {
  YamlBudget budget;
  return from_yaml(y, budget, 0);
}

/// Length of the valid UTF-8 sequence starting at s[i] (0 when invalid: a stray continuation
/// byte, a truncated sequence, an overlong form, a surrogate or a code point above U+10FFFF).
size_t utf8_length(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  const size_t n = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) {
    return 0;
  }
  return n;
}

/// YAML text is Unicode: a config that is not valid UTF-8 is refused with the place of the first
/// bad byte (its values could not be written back to the run directory unchanged).
void require_utf8(const std::string& text, const std::string& name) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_length(text, i);
    if (n == 0) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "0x%02X", static_cast<unsigned char>(text[i]));
      throw ConfigError(name, line, "", std::string("not UTF-8 text: byte ") + buf + " at column " +
                                            std::to_string(i - line_start + 1));
    }
    if (text[i] == '\n') ++line, line_start = i + 1;
    i += n;
  }
}

/// yaml-cpp event sink that keeps nothing (used to count documents).
struct IgnoreYamlEvents final : YAML::EventHandler {
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

Node parse(const std::string& text, const std::string& name) {
  try {
    // Count documents with a bounded loop: yaml-cpp 0.7's LoadAll() never returns on some
    // malformed text (`&a ,a]`: every HandleNextDocument() "succeeds" without consuming input).
    require_utf8(text, name);
    std::istringstream in(text);
    YAML::Parser parser(in);
    IgnoreYamlEvents ignore;
    int docs = 0;
    while (docs < 2 && parser.HandleNextDocument(ignore)) ++docs;
    if (docs == 0) return Node::make_map();
    if (docs > 1) throw ConfigError(name, 0, "", "expected one YAML document, found more (a second '---', or text after the first document that YAML cannot place)");
    Node root = from_yaml(YAML::Load(text));
    if (!root.is_map() && !root.is_null()) {
      throw ConfigError(name, root.line, "", "expected a map at the top level, found " + root.describe());
    }
    return root;
  } catch (const ConfigError& e) {
    if (!e.file().empty()) throw;
    throw ConfigError(name, e.line(), e.key_path(), e.message());
  } catch (const YAML::Exception& e) {
    throw ConfigError(name, e.mark.line + 1, "", "YAML syntax error: " + e.msg + " (column " +
                                                     std::to_string(e.mark.column + 1) + ")");
  }
}

bool looks_like_yaml_bool(const std::string& s, bool& out) {
  static const char* kTrue[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
  static const char* kFalse[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
  for (const char* t : kTrue)
    if (s == t) return out = true, true;
  for (const char* f : kFalse)
    if (s == f) return out = false, true;
  return false;
}

template <class I>
void decode_integer(const Node& n, const Context& c, I& out) {
  const std::string& s = n.scalar;
  int64_t v = 0;
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (b != e && *b == '+') ++b;
  auto r = std::from_chars(b, e, v);
  if (n.quoted || s.empty() || r.ec != std::errc() || r.ptr != e) {
    // Allow integral floats written like 1e3 or 100.0.
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(s.c_str(), &end);
    if (!n.quoted && !s.empty() && end == s.c_str() + s.size() && errno == 0 && std::isfinite(d) &&
        std::floor(d) == d && std::fabs(d) < 9.0e15) {
      v = static_cast<int64_t>(d);
    } else {
      fail(n, c, "expected an integer, found " + n.describe());
    }
  }
  if (v < static_cast<int64_t>(std::numeric_limits<I>::min()) ||
      v > static_cast<int64_t>(std::numeric_limits<I>::max())) {
    fail(n, c, "expected an integer in range, found " + n.describe());
  }
  out = static_cast<I>(v);
}

void emit(const Node& n, int indent, std::ostringstream& os, bool inline_start);

/// `text` as a YAML double-quoted scalar (valid in block and flow context). Bytes that are not
/// valid UTF-8 (only possible in values set from code, such as a path; parsed text is UTF-8) are
/// written as \xNN and read back as that code point.
std::string double_quoted(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else if (const size_t n = c >= 0x80 ? utf8_length(text, i) : 0; n > 1) {
      out.append(text, i, n);
      i += n - 1;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

/// A scalar that reads back as itself when written plain, in block and in flow context:
/// printable ASCII, no indicator first, no flow indicators, comments or ": " inside.
bool plain_is_safe(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  if (std::string("?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string::npos) return false;
  if (s.front() == '-' && (s.size() == 1 || s[1] == ' ' || s.rfind("---", 0) == 0)) return false;  // -1 stays plain
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || ch == ',' || ch == '[' || ch == ']' || ch == '{' || ch == '}' || ch == '#') {
      return false;
    }
  }
  return s.find(": ") == std::string::npos && s.back() != ':';
}

std::string emit_scalar(const Node& n) {
  if (n.is_null()) return "null";
  if (!n.quoted && plain_is_safe(n.scalar)) return n.scalar;
  return double_quoted(n.scalar);
}

/// A map key as YAML: plain when that reads back as the same string key, double-quoted
/// otherwise (a key such as "a: b", "#x" or "null" written plainly would not).
std::string emit_key(const std::string& key) {
  const bool null_like = key == "~" || key == "null" || key == "Null" || key == "NULL";
  return !null_like && plain_is_safe(key) ? key : double_quoted(key);
}

void emit(const Node& n, int indent, std::ostringstream& os, bool /*inline_start*/) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  if (n.is_map()) {
    if (n.entries.empty()) {
      os << " {}\n";
      return;
    }
    os << "\n";
    for (const auto& [k, v] : n.entries) {
      os << pad << emit_key(k) << ":";
      if (v.is_map() || (v.is_sequence() && !v.items.empty())) {
        emit(v, indent + 2, os, false);
      } else if (v.is_sequence()) {
        os << " []\n";
      } else {
        os << " " << emit_scalar(v) << "\n";
      }
    }
  } else if (n.is_sequence()) {
    bool flat = std::all_of(n.items.begin(), n.items.end(),
                            [](const Node& i) { return i.is_scalar() || i.is_null(); });
    if (flat) {
      os << " [";
      for (size_t i = 0; i < n.items.size(); ++i) os << (i ? ", " : "") << emit_scalar(n.items[i]);
      os << "]\n";
      return;
    }
    os << "\n";
    for (const auto& item : n.items) {
      os << pad << "-";
      if (item.is_map() || item.is_sequence()) {
        std::ostringstream inner;
        emit(item, indent + 2, inner, true);
        std::string s = inner.str();
        // put the first key on the dash line
        size_t first = s.find_first_not_of(" \n");
        os << " " << (first == std::string::npos ? s : s.substr(first));
      } else {
        os << " " << emit_scalar(item) << "\n";
      }
    }
  } else {
    os << " " << emit_scalar(n) << "\n";
  }
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, std::string key_path, std::string message)
    : std::runtime_error(format_error(file, line, key_path, message)),
      file_(std::move(file)),
      key_path_(std::move(key_path)),
      message_(std::move(message)),
      line_(line) {}

Node Node::make_scalar(std::string text, bool quoted) {
  Node n;
  n.kind = Kind::kScalar;
  n.scalar = std::move(text);
  n.quoted = quoted;
  return n;
}
Node Node::make_map() {
  Node n;
  n.kind = Kind::kMap;
  return n;
}
Node Node::make_sequence() {
  Node n;
  n.kind = Kind::kSequence;
  return n;
}
const Node* Node::find(const std::string& key) const {
  for (const auto& e : entries)
    if (e.first == key) return &e.second;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  for (auto& e : entries)
    if (e.first == key) return &e.second;
  return nullptr;
}
Node& Node::at_or_insert(const std::string& key) {
  if (kind == Kind::kNull) kind = Kind::kMap;
  if (Node* n = find(key)) return *n;
  entries.emplace_back(key, Node{});
  return entries.back().second;
}
std::string Node::describe() const {
  switch (kind) {
    case Kind::kNull:
      return "null";
    case Kind::kScalar:
      return "'" + one_line(scalar, 80) + "'";
    case Kind::kSequence:
      return "a sequence";
    case Kind::kMap:
      return "a map";
  }
  return "?";
}

Node parse_yaml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path, 0, "", "cannot open config file");
  in.seekg(0, std::ios::end);
  const auto bytes = static_cast<std::streamoff>(in.tellg());
  if (bytes > static_cast<std::streamoff>(kMaxConfigFileBytes)) {
    throw ConfigError(path, 0, "", "file of " + std::to_string(bytes) + " bytes is larger than the " +
                                       std::to_string(kMaxConfigFileBytes >> 20) + " MB a config may have");
  }
  in.seekg(0, std::ios::beg);
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Node parse_yaml_string(const std::string& text, const std::string& source_name) {
  return parse(text, source_name);
}

std::string to_yaml(const Node& node) {
  std::ostringstream os;
  if (node.is_map()) {
    emit(node, 0, os, true);
    std::string s = os.str();
    return s.size() > 0 && s[0] == '\n' ? s.substr(1) : s;
  }
  emit(node, 0, os, true);
  return os.str();
}

void apply_override(Node& root, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set", 0, assignment, "expected KEY.PATH=VALUE");
  }
  std::string path = assignment.substr(0, eq);
  std::string value = assignment.substr(eq + 1);
  Node parsed;
  try {
    require_utf8(value, "--set");
    YAML::Node y = YAML::Load(value.empty() ? std::string("''") : value);
    parsed = from_yaml(y);
  } catch (const YAML::Exception& e) {
    throw ConfigError("--set", 0, path, "cannot parse value '" + one_line(value, 80) + "': " + e.msg);
  } catch (const ConfigError& e) {  // duplicate keys, alias budget, ... inside the value
    throw ConfigError("--set", 0, path, "value '" + one_line(value, 80) + "': " + e.message());
  }
  parsed.line = -1;
  Node* cur = &root;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (key.empty()) throw ConfigError("--set", 0, path, "empty key in path");
    if (!cur->is_map() && !cur->is_null()) {
      throw ConfigError("--set", 0, path, "'" + path.substr(0, start ? start - 1 : 0) +
                                              "' is not a map, cannot set '" + key + "'");
    }
    bool existed = cur->find(key) != nullptr;
    Node& next = cur->at_or_insert(key);
    if (!existed) next.line = next.key_line = -1;
    if (dot == std::string::npos) {
      next = parsed;
      next.key_line = -1;
      return;
    }
    cur = &next;
    start = dot + 1;
  }
}

void apply_overrides(Node& root, const std::vector<std::string>& assignments) {
  for (const auto& a : assignments) apply_override(root, a);
}

void fail(const Node& n, const Context& c, const std::string& message) {
  throw ConfigError(c.file, n.line, c.path, message);
}

void decode_scalar(const Node& n, const Context& c, bool& out) {
  if (n.quoted || !looks_like_yaml_bool(n.scalar, out)) {
    fail(n, c, "expected a boolean (true/false), found " + n.describe());
  }
}
void decode_scalar(const Node& n, const Context& c, int& out) { decode_integer(n, c, out); }
void decode_scalar(const Node& n, const Context& c, int64_t& out) { decode_integer(n, c, out); }
void decode_scalar(const Node& n, const Context& c, double& out) {
  const std::string& s = n.scalar;
  if (!n.quoted && !s.empty()) {
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(s.c_str(), &end);
    if (end == s.c_str() + s.size()) {
      const bool underflow = errno == ERANGE && std::fabs(d) < 1.0;  // 1e-400 reads as 0
      if (std::isfinite(d) && (errno == 0 || underflow)) return void(out = d);
      fail(n, c, "expected a finite number, found " + n.describe());
    }
    // YAML's spellings of infinity and not-a-number: never a valid setting.
    static const char* kNonFinite[] = {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
                                       "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"};
    for (const char* t : kNonFinite) {
      if (s == t) fail(n, c, "expected a finite number, found " + n.describe());
    }
  }
  fail(n, c, "expected a number, found " + n.describe());
}
void decode_scalar(const Node& n, const Context& c, float& out) {
  double d = 0;
  decode_scalar(n, c, d);
  if (std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max())) {
    fail(n, c, "expected a finite number within the float range, found " + n.describe());
  }
  out = static_cast<float>(d);
}
void decode_scalar(const Node& n, const Context& c, std::string& out) { out = n.scalar; }

Node encode_scalar(bool v) { return Node::make_scalar(v ? "true" : "false"); }
Node encode_scalar(int v) { return Node::make_scalar(std::to_string(v)); }
Node encode_scalar(int64_t v) { return Node::make_scalar(std::to_string(v)); }
Node encode_scalar(double v) {
  if (std::isinf(v)) return Node::make_scalar(v > 0 ? ".inf" : "-.inf");
  if (std::isnan(v)) return Node::make_scalar(".nan");
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
  std::string s(buf, r.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return Node::make_scalar(s);
}
Node encode_scalar(float v) { return encode_scalar(static_cast<double>(v)); }
Node encode_scalar(const std::string& v) {
  // Quote strings that YAML would otherwise read as another type.
  bool b;
  char* end = nullptr;
  std::strtod(v.c_str(), &end);
  bool numeric = !v.empty() && end == v.c_str() + v.size();
  bool quote = v.empty() || numeric || looks_like_yaml_bool(v, b) || v == "null" || v == "~";
  return Node::make_scalar(v, quote);
}

Reader& Reader::one_of(const char* key, std::string& value, const std::vector<std::string>& choices) {
  (*this)(key, value);
  if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
    std::string list;
    for (const auto& ch : choices) list += (list.empty() ? "" : ", ") + ch;
    const Node* n = node_.find(key);
    throw ConfigError(ctx_.file, n ? n->line : node_.line, ctx_.join(key),
                      "expected one of [" + list + "], found '" + value + "'");
  }
  return *this;
}

void Reader::require(bool ok, const char* key, const std::string& expected) const {
  if (ok) return;
  const Node* n = node_.find(key);
  std::string found = n ? n->describe() : std::string("the default");
  throw ConfigError(ctx_.file, n ? n->line : node_.line, ctx_.join(key),
                    "expected " + expected + ", found " + found);
}

void Reader::finish() const {
  for (const auto& [k, v] : node_.entries) {
    if (std::find(asked_.begin(), asked_.end(), k) == asked_.end()) {
      std::vector<std::string> valid = asked_;
      std::sort(valid.begin(), valid.end());
      std::string list;
      for (const auto& s : valid) list += (list.empty() ? "" : ", ") + s;
      throw ConfigError(ctx_.file, v.key_line, ctx_.join(k),
                        "unknown key; valid keys here: " + list);
    }
  }
}

}  // namespace ewa::config
