// ConfigError: the one exception the config loaders throw. It always names the file, and
// where a position is known the 1-based line and column and the key path ("tun.mtu",
// "peers[1].force"); what() reads
//   mesh.yaml:7:9: tun.mtu: expected an integer 576..9000, got "big"
// A line of 0 means the error concerns the whole file (it cannot be read); an empty key means
// no key is involved (a YAML syntax error, or the top level of the document).
#pragma once

#include <stdexcept>
#include <string>

namespace p2p::config {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string file, int line, int column, std::string key, std::string message);

  const std::string& file() const { return file_; }
  int line() const { return line_; }
  int column() const { return column_; }
  const std::string& key() const { return key_; }
  const std::string& message() const { return message_; }

 private:
  std::string file_;
  int line_;
  int column_;
  std::string key_;
  std::string message_;
};

}  // namespace p2p::config
