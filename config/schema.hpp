// Typed, validated walking of a YAML document into a plain struct, shared by mesh.yaml and
// coordinator.yaml.
//
// A config struct is described by a Schema: one Field row per key, naming the key, whether it
// is required, and how to read it into which member:
//   {"mtu", kOptional, into(&Tun::mtu, integer_in<std::uint16_t>(576, 9000))},
// Defaults live in the struct's member initialisers; an absent optional key leaves them alone.
// read_mapping() applies a schema to a YAML mapping: it rejects duplicate and unknown keys
// (suggesting the closest known one), reads each present key in document order, reports
// missing required keys, then runs the schema's cross-field check.
//
// Every failure throws ConfigError naming the file, the 1-based line and column of the
// offending node and its key path ("tun.mtu", "peers[1].force"). Readers are callables
// `X(const Value&)`; the generic ones are below, config-specific ones live with their config.
// An empty value (`tun:` with nothing after it) counts as an empty mapping or list, so the
// section or list keeps its defaults.
#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config_error.hpp"
#include "net/ip.hpp"

namespace p2p::config {

// Where a document came from: the name errors show and the absolute folder that relative
// paths inside it resolve against.
struct Source {
  std::string file;
  std::filesystem::path base_dir;

  // The source for a config called `file_name` (as given, possibly relative to the cwd).
  static Source for_file(const std::filesystem::path& file_name);
  std::filesystem::path absolute_file() const;
};

// A YAML node together with where it sits: its key path and the position to report.
// Holds a pointer to its Source, which must outlive it.
class Value {
 public:
  struct Entry;

  Value(YAML::Node node, const Source& source, std::string path, YAML::Mark mark);

  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  const Source& source() const { return *source_; }
  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }

  [[noreturn]] void fail(const std::string& message) const;
  // "expected <what>, got <a description of this node>".
  [[noreturn]] void expected(std::string_view what) const;
  // An error about a key of this mapping that is not there.
  [[noreturn]] void fail_missing(std::string_view key) const;

  // The text of a scalar of any style; throws `expected(what)` otherwise.
  std::string scalar(std::string_view what) const;
  // The text of an unquoted scalar (numbers, booleans): "1400" is a string, 1400 a number.
  std::string plain_scalar(std::string_view what) const;
  // A sequence's elements (paths "key[0]", ...); null is an empty list.
  std::vector<Value> elements() const;
  // A mapping's entries in document order; null is an empty mapping. Keys must be scalars.
  std::vector<Entry> entries() const;
  // The value under `key` of this mapping, if present.
  std::optional<Value> child(std::string_view key) const;

 private:
  YAML::Node node_;
  const Source* source_;
  std::string path_;
  YAML::Mark mark_;
};

struct Value::Entry {
  std::string key;
  Value key_node;  // the key itself, for errors about the key
  Value value;
};

// The closest candidate to `word` by edit distance (with transpositions), if close enough to
// be a plausible typo.
std::optional<std::string_view> closest_match(std::string_view word,
                                              const std::vector<std::string_view>& candidates);

// Checks a mapping's keys against `known`: each key once, each key known (else the error
// suggests the closest known key). Returns the entries in document order.
std::vector<Value::Entry> checked_entries(const Value& map,
                                          const std::vector<std::string_view>& known);

// --- Schemas ---------------------------------------------------------------------------------

inline constexpr bool kRequired = true;
inline constexpr bool kOptional = false;

template <class T>
using FieldReader = std::function<void(const Value&, T&)>;

template <class T>
struct Field {
  std::string_view key;
  bool required;
  FieldReader<T> read;
};

template <class T>
struct Schema {
  std::vector<Field<T>> fields;
  // Cross-field rules, run after every field was read; `map` is the mapping just read.
  std::function<void(const Value& map, T& out)> check = {};
};

template <class T>
void read_mapping(const Value& map, const Schema<T>& schema, T& out) {
  std::vector<std::string_view> known;
  for (const auto& f : schema.fields) known.push_back(f.key);
  std::vector<bool> seen(schema.fields.size());
  for (const auto& entry : checked_entries(map, known)) {
    for (std::size_t i = 0; i < schema.fields.size(); ++i) {
      if (schema.fields[i].key != entry.key) continue;
      schema.fields[i].read(entry.value, out);
      seen[i] = true;
    }
  }
  for (std::size_t i = 0; i < schema.fields.size(); ++i) {
    if (schema.fields[i].required && !seen[i]) map.fail_missing(schema.fields[i].key);
  }
  if (schema.check) schema.check(map, out);
}

// A field row's reader: reads with `reader` and stores into `member`.
template <class T, class M, class Reader>
FieldReader<T> into(M T::*member, Reader reader) {
  return [member, reader](const Value& v, T& out) { out.*member = reader(v); };
}

// A nested section: a mapping read with its own schema into a default-constructed M.
template <class M>
auto section(const Schema<M>& schema) {
  return [&schema](const Value& v) {
    M m{};
    read_mapping(v, schema, m);
    return m;
  };
}

// A list whose elements are read by `reader`, with at least `min` of them. If `unique_key`
// is given (element -> std::string), two elements with the same key are an error.
template <class Reader, class Key = std::nullptr_t>
auto list_of(Reader reader, std::size_t min = 0, Key unique_key = nullptr) {
  return [reader, min, unique_key](const Value& v) {
    using Elem = decltype(reader(v));
    auto items = v.elements();
    if (items.size() < min) {
      v.expected("a list of at least " + std::to_string(min) + (min == 1 ? " entry" : " entries"));
    }
    std::vector<Elem> out;
    [[maybe_unused]] std::map<std::string, std::size_t> first;
    for (std::size_t i = 0; i < items.size(); ++i) {
      out.push_back(reader(items[i]));
      if constexpr (!std::is_same_v<Key, std::nullptr_t>) {
        auto [it, fresh] = first.emplace(std::invoke(unique_key, out.back()), i);
        if (!fresh) items[i].fail("duplicate entry, same as " + items[it->second].path());
      }
    }
    return out;
  };
}

// --- Generic readers -------------------------------------------------------------------------

// A non-empty scalar without control characters.
std::string read_text(const Value& v);
// true or false (YAML 1.2 core spellings), unquoted.
bool read_bool(const Value& v);
// A decimal integer in lo..hi, unquoted, no sign on positives, no leading zeros.
std::int64_t read_integer(const Value& v, std::int64_t lo, std::int64_t hi);
std::chrono::milliseconds read_duration(const Value& v, std::chrono::milliseconds lo,
                                        std::chrono::milliseconds hi);
IpAddress read_ip(const Value& v);
Ipv4 read_ipv4(const Value& v);
Ipv4Prefix read_ipv4_prefix(const Value& v);
// "IP:PORT" or "[IPv6]:PORT", any address, port 1..65535 (a socket to bind).
Endpoint read_endpoint(const Value& v);
// As read_endpoint, but the address must be a specific one (a destination, not 0.0.0.0/::).
Endpoint read_remote_endpoint(const Value& v);
// A path, resolved against the config file's folder (not checked on disk). A leading '~' is
// refused: nothing here expands it.
std::filesystem::path read_path(const Value& v);
// A path to a regular file that this process can open for reading.
std::filesystem::path read_readable_file(const Value& v);
// As read_readable_file, and refused when group or others have any access to it.
std::filesystem::path read_private_key_file(const Value& v);
// A certificate fingerprint: 64 hex digits (either case), returned in lowercase as
// crypto::fingerprint() prints it.
std::string read_fingerprint(const Value& v);
// A rate such as "20mbit" (per second), converted to bytes per second (at least 1).
std::uint64_t read_rate(const Value& v);
// An amount such as "4mbit", converted to bytes (at least 1).
std::uint64_t read_data_size(const Value& v);

template <class I>
auto integer_in(I lo, I hi) {
  return [lo, hi](const Value& v) { return static_cast<I>(read_integer(v, lo, hi)); };
}

inline auto duration_in(std::chrono::milliseconds lo, std::chrono::milliseconds hi) {
  return [lo, hi](const Value& v) { return read_duration(v, lo, hi); };
}

// Index of the scalar among `names` (an error lists them and suggests the closest).
std::size_t read_choice(const Value& v, const std::vector<std::string_view>& names);

// One of a fixed set of words, each standing for a value of E.
template <class E>
auto one_of(std::vector<std::pair<std::string_view, E>> choices) {
  return [choices](const Value& v) {
    std::vector<std::string_view> names;
    for (const auto& c : choices) names.push_back(c.first);
    return choices[read_choice(v, names)].second;
  };
}

// --- Documents -------------------------------------------------------------------------------

// Parses `text` (one YAML document, or none) and returns its root; syntax errors, a second
// document and other yaml-cpp exceptions become ConfigError. Nesting needs no guard of our
// own: yaml-cpp's parser stops at depth 2000 (DeepRecursion), which fits the stack even under
// ASan (the fuzz seed deep_nesting.yaml sits just below it).
YAML::Node parse_document(std::string_view text, const Source& source);
// A yaml-cpp exception as a ConfigError at its mark.
[[noreturn]] void throw_yaml_error(const YAML::Exception& e, const Source& source);

// Reads a whole document with `schema`; every yaml-cpp exception becomes a ConfigError.
template <class T>
T read_document(std::string_view text, const Source& source, const Schema<T>& schema) {
  try {
    YAML::Node root = parse_document(text, source);
    T out{};
    read_mapping(Value(root, source, "", root.Mark()), schema, out);
    return out;
  } catch (const YAML::Exception& e) {
    throw_yaml_error(e, source);
  }
}

// A config struct (it has a `source` member) from `text`, reported as coming from `file_name`.
template <class T>
T read_config(std::string_view text, const std::filesystem::path& file_name,
              const Schema<T>& schema) {
  Source source = Source::for_file(file_name);
  T out = read_document(text, source, schema);
  out.source = source.absolute_file();
  return out;
}

// The contents of a config file (at most 1 MiB); ConfigError if it cannot be read.
std::string read_config_file(const std::filesystem::path& file);

}  // namespace p2p::config
