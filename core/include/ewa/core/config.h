// Typed YAML configuration: a small YAML tree (yaml-cpp stays private to core), decoding into
// option structs that describe themselves with a `visit(Archive&)` method, unknown-key
// rejection, `--set a.b=c` overrides, and writing the resolved config back as YAML.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace ewa::config {

/// A configuration error: names the file, the dotted key path, what was expected and found.
/// Apps print `what()` on one line and exit with status 2.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, std::string key_path, std::string message);
  const std::string& file() const { return file_; }
  const std::string& key_path() const { return key_path_; }
  int line() const { return line_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  std::string key_path_;
  std::string message_;
  int line_;
};

/// A YAML value: null, scalar (kept as text), sequence or map (insertion order kept).
struct Node {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string scalar;
  bool quoted = false;  ///< scalar was quoted in the source (always a string)
  std::vector<Node> items;
  std::vector<std::pair<std::string, Node>> entries;
  int line = 0;  ///< 1-based source line; 0 = generated; -1 = from a --set override
  int key_line = 0;  ///< line of the map key that holds this node (same conventions)

  static Node make_scalar(std::string text, bool quoted = false);
  static Node make_map();
  static Node make_sequence();
  bool is_null() const { return kind == Kind::kNull; }
  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_map() const { return kind == Kind::kMap; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  /// Map entry for `key`, created (as null) when absent. Turns a null node into a map.
  Node& at_or_insert(const std::string& key);
  /// Short human description for error messages: `'abc'`, `a sequence`, `a map`, `null`.
  std::string describe() const;
};

/// Parses a YAML file (syntax errors name file:line:column). Throws ConfigError.
Node parse_yaml_file(const std::string& path);
/// Parses YAML text; `source_name` is used in error messages.
Node parse_yaml_string(const std::string& text, const std::string& source_name);
/// Emits a node as YAML text (block style, keys in stored order).
std::string to_yaml(const Node& node);

/// Applies `a.b.c=value` (value parsed as a YAML flow scalar/sequence/map) to `root`,
/// creating maps along the path. Throws ConfigError on a malformed assignment.
void apply_override(Node& root, const std::string& assignment);
void apply_overrides(Node& root, const std::vector<std::string>& assignments);

/// Path/context shared by the archives while they walk a struct.
struct Context {
  std::string file;
  std::string path;  ///< dotted key path of the current node ("" at the root)
  std::string join(const std::string& key) const { return path.empty() ? key : path + "." + key; }
};

// --------------------------------------------------------------------------------------
// Scalar conversion (defined in config.cpp). Throw ConfigError naming expected and found.
void decode_scalar(const Node& n, const Context& c, bool& out);
void decode_scalar(const Node& n, const Context& c, int& out);
void decode_scalar(const Node& n, const Context& c, int64_t& out);
void decode_scalar(const Node& n, const Context& c, double& out);
void decode_scalar(const Node& n, const Context& c, float& out);
void decode_scalar(const Node& n, const Context& c, std::string& out);
Node encode_scalar(bool v);
Node encode_scalar(int v);
Node encode_scalar(int64_t v);
Node encode_scalar(double v);
Node encode_scalar(float v);
Node encode_scalar(const std::string& v);

[[noreturn]] void fail(const Node& n, const Context& c, const std::string& message);

template <class T, class = void>
struct is_visitable : std::false_type {};
class Reader;
template <class T>
struct is_visitable<T, std::void_t<decltype(std::declval<T&>().visit(std::declval<Reader&>()))>>
    : std::true_type {};

template <class T>
void decode_value(const Node& n, const Context& c, T& out);
template <class T>
Node encode_value(const T& v);

/// Decodes a map node into a visitable struct: asks the struct for its keys, rejects the
/// keys it did not ask for (listing the valid ones), and runs its checks.
class Reader {
 public:
  Reader(const Node& node, Context ctx) : node_(node), ctx_(std::move(ctx)) {}

  /// Declares a key. Absent keys keep the C++ default.
  template <class T>
  Reader& operator()(const char* key, T& value) {
    asked_.emplace_back(key);
    if (const Node* child = node_.find(key)) {
      decode_value(*child, Context{ctx_.file, ctx_.join(key)}, value);
    }
    return *this;
  }
  /// Declares a string key restricted to `choices`.
  Reader& one_of(const char* key, std::string& value, const std::vector<std::string>& choices);
  /// Declares a constraint; on failure names the key and what was expected.
  void require(bool ok, const char* key, const std::string& expected) const;

  void finish() const;  ///< throws on keys that were not asked for
  const Context& context() const { return ctx_; }
  static constexpr bool kReading = true;

 private:
  const Node& node_;
  Context ctx_;
  std::vector<std::string> asked_;
};

/// Encodes a visitable struct into a map node (all keys, defaults included).
class Writer {
 public:
  template <class T>
  Writer& operator()(const char* key, const T& value) {
    node_.entries.emplace_back(key, encode_value(value));
    return *this;
  }
  Writer& one_of(const char* key, const std::string& value, const std::vector<std::string>&) {
    return (*this)(key, value);
  }
  void require(bool, const char*, const std::string&) const {}
  Node take() { return std::move(node_); }
  static constexpr bool kReading = false;

 private:
  Node node_ = Node::make_map();
};

template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T>
struct is_string_map<std::map<std::string, T>> : std::true_type {};

template <class T>
void decode_value(const Node& n, const Context& c, T& out) {
  if constexpr (is_visitable<T>::value) {
    if (n.is_null()) return;  // `key:` with nothing keeps the defaults
    if (!n.is_map()) fail(n, c, "expected a map, found " + n.describe());
    Reader r(n, c);
    out.visit(r);
    r.finish();
  } else if constexpr (is_vector<T>::value) {
    if (!n.is_sequence()) {
      if (n.is_scalar() && !n.quoted) {  // a lone scalar is a one-element list
        typename T::value_type v{};
        decode_value(n, c, v);
        out = {v};
        return;
      }
      fail(n, c, "expected a sequence, found " + n.describe());
    }
    T result;
    for (size_t i = 0; i < n.items.size(); ++i) {
      typename T::value_type v{};
      decode_value(n.items[i], Context{c.file, c.path + "[" + std::to_string(i) + "]"}, v);
      result.push_back(std::move(v));
    }
    out = std::move(result);
  } else if constexpr (is_optional<T>::value) {
    if (n.is_null()) {
      out.reset();
      return;
    }
    typename T::value_type v{};
    decode_value(n, c, v);
    out = std::move(v);
  } else if constexpr (is_string_map<T>::value) {
    if (!n.is_map()) fail(n, c, "expected a map, found " + n.describe());
    T result;
    for (const auto& [k, v] : n.entries) {
      typename T::mapped_type value{};
      decode_value(v, Context{c.file, c.join(k)}, value);
      result.emplace(k, std::move(value));
    }
    out = std::move(result);
  } else {
    if (!n.is_scalar()) fail(n, c, "expected a scalar, found " + n.describe());
    decode_scalar(n, c, out);
  }
}

template <class T>
Node encode_value(const T& v) {
  if constexpr (is_visitable<T>::value) {
    Writer w;
    const_cast<T&>(v).visit(w);  // visit() only reads through a Writer
    return w.take();
  } else if constexpr (is_vector<T>::value) {
    Node n = Node::make_sequence();
    for (const auto& x : v) n.items.push_back(encode_value(x));
    return n;
  } else if constexpr (is_optional<T>::value) {
    return v ? encode_value(*v) : Node{};
  } else if constexpr (is_string_map<T>::value) {
    Node n = Node::make_map();
    for (const auto& [k, x] : v) n.entries.emplace_back(k, encode_value(x));
    return n;
  } else {
    return encode_scalar(v);
  }
}

/// Decodes the whole document into T. `file` is used in error messages.
template <class T>
T decode(const Node& root, const std::string& file) {
  T out{};
  decode_value(root.is_null() ? Node::make_map() : root, Context{file, ""}, out);
  return out;
}

/// Loads FILE, applies overrides, decodes into T.
template <class T>
T load(const std::string& file, const std::vector<std::string>& overrides = {}) {
  Node root = parse_yaml_file(file);
  apply_overrides(root, overrides);
  return decode<T>(root, file);
}

template <class T>
std::string dump(const T& value) {
  return to_yaml(encode_value(value));
}

}  // namespace ewa::config
