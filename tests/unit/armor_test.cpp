// Text armour: round trips, the exact line layout, every rejection of the strict decoder, and
// the file helpers (permission refusal, no-overwrite, atomic replace).
#include "crypto/armor.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <numeric>

#include "crypto/secure_buffer.hpp"
#include "tests/support/temp_dir.hpp"

namespace p2p::crypto {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

Bytes counting(std::size_t n) {
  Bytes b(n);
  std::iota(b.begin(), b.end(), std::uint8_t{1});
  return b;
}

std::string error_of(std::string_view text, std::string_view label = "TEST") {
  auto r = dearmor(text, label);
  EXPECT_FALSE(r) << "accepted: " << text;
  return r ? std::string() : r.error().message;
}

constexpr std::string_view kBegin = "-----BEGIN P2PVPN TEST-----\n";
constexpr std::string_view kEnd = "-----END P2PVPN TEST-----\n";

std::string block(std::string_view body) {
  return std::string(kBegin) + std::string(body) + std::string(kEnd);
}

TEST(Armor, RoundTripsEverySizeAcrossLineBoundaries) {
  for (std::size_t n = 1; n <= 200; ++n) {
    Bytes data = counting(n);
    std::string text = armor("TEST", data);
    auto back = dearmor(text, "TEST");
    ASSERT_TRUE(back) << n << ": " << back.error().message;
    EXPECT_EQ(*back, data) << n;
  }
}

TEST(Armor, LayoutIsBeginLinesOf64End) {
  std::string text = armor("TEST", counting(100));  // 100 bytes -> 136 base64 chars
  EXPECT_EQ(text,
            "-----BEGIN P2PVPN TEST-----\n"
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8w\n"
            "MTIzNDU2Nzg5Ojs8PT4/QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl9g\n"
            "YWJjZA==\n"
            "-----END P2PVPN TEST-----\n");
}

TEST(Armor, ToleratesCrlfTrailingWhitespaceAndSurroundingBlankLines) {
  std::string text =
      "\r\n\n-----BEGIN P2PVPN TEST----- \r\nAQID\t\r\n-----END P2PVPN TEST-----\r\n\n  \n";
  auto r = dearmor(text, "TEST");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(*r, (Bytes{1, 2, 3}));
  EXPECT_TRUE(dearmor("-----BEGIN P2PVPN TEST-----\nAQID\n-----END P2PVPN TEST-----", "TEST"))
      << "a missing final newline is fine";
}

TEST(Armor, RejectsWrongLabelAndSaysWhatWasFound) {
  std::string text = armor("OTHER THING", Bytes{1, 2, 3});
  std::string e = error_of(text);
  EXPECT_NE(e.find("BEGIN P2PVPN TEST"), std::string::npos) << e;
  EXPECT_NE(e.find("OTHER THING"), std::string::npos) << e;
  // Matching BEGIN but the END of another label.
  e = error_of(std::string(kBegin) + "AQID\n-----END P2PVPN OTHER-----\n");
  EXPECT_NE(e.find("END P2PVPN TEST"), std::string::npos) << e;
}

TEST(Armor, RejectsBrokenStructure) {
  EXPECT_NE(error_of("").find("no '-----BEGIN P2PVPN TEST-----' line"), std::string::npos);
  EXPECT_NE(error_of("hello\n" + block("AQID\n")).find("line 1"), std::string::npos);
  EXPECT_NE(error_of(std::string(kBegin) + "AQID\n").find("missing"), std::string::npos);
  EXPECT_NE(error_of(block("AQID\n") + "trailing\n").find("after the END"), std::string::npos);
  EXPECT_NE(error_of(block("")).find("empty"), std::string::npos);
  EXPECT_NE(error_of(block("AQID\n\nAQID\n")).find("blank line"), std::string::npos);
  EXPECT_NE(error_of(" " + block("AQID\n")).find("line 1"), std::string::npos)
      << "leading whitespace is not tolerated";
  EXPECT_FALSE(dearmor(block("AQID\n") + block("AQID\n"), "TEST")) << "two blocks";
}

TEST(Armor, RejectsBadBase64Lines) {
  const std::string full(64, 'A');
  // A short line that is not the last one.
  EXPECT_NE(error_of(block("AQID\n" + full + "\n")).find("line 2: base64 lines must be 64"),
            std::string::npos);
  EXPECT_NE(error_of(block(full + "AAAA\n")).find("must be 64"), std::string::npos);
  EXPECT_NE(error_of(block("AQI\n")).find("multiple of 4"), std::string::npos);
  EXPECT_NE(error_of(block("AQ*D\n")).find("invalid base64 near column 3"), std::string::npos);
  EXPECT_NE(error_of(block("AQ=D\n")).find("invalid base64"), std::string::npos);
  EXPECT_NE(error_of(block(full.substr(0, 62) + "==\n" + "AQID\n")).find("padding"),
            std::string::npos);
  // Non-canonical: "QR==" decodes to the same byte as "QQ==" but has non-zero pad bits.
  EXPECT_TRUE(dearmor(block("QQ==\n"), "TEST"));
  EXPECT_NE(error_of(block("QR==\n")).find("invalid base64"), std::string::npos);
  EXPECT_FALSE(dearmor(block("AQID\n").replace(kBegin.size(), 4, "_-ID"), "TEST"))
      << "URL-safe alphabet is not the original variant";
}

TEST(Armor, RejectsOversizeInputBeforeParsing) {
  std::string huge = block(std::string(kMaxArmorText, 'A'));
  EXPECT_NE(error_of(huge).find("more than the 65536 allowed"), std::string::npos);
}

TEST(Armor, DearmorIntoFillsExactlyAndWipesOnError) {
  SecureBuffer<32> out;
  Bytes data = counting(32);
  ASSERT_TRUE(dearmor_into(armor("TEST", data), "TEST", out.span()));
  EXPECT_TRUE(std::equal(data.begin(), data.end(), out.data()));

  auto shorter = dearmor_into(armor("TEST", counting(31)), "TEST", out.span());
  ASSERT_FALSE(shorter);
  EXPECT_NE(shorter.error().message.find("31 bytes, expected 32"), std::string::npos);
  EXPECT_TRUE(std::all_of(out.data(), out.data() + 32, [](auto b) { return b == 0; }));

  auto longer = dearmor_into(armor("TEST", counting(33)), "TEST", out.span());
  ASSERT_FALSE(longer);
  EXPECT_NE(longer.error().message.find("longer than the 32 bytes"), std::string::npos);
}

TEST(Armor, LabelOfFirstBlock) {
  EXPECT_EQ(armor_label(armor("X25519 PRIVATE KEY", Bytes{1})), "X25519 PRIVATE KEY");
  EXPECT_EQ(armor_label("no armour here"), std::nullopt);
  EXPECT_EQ(armor_label("-----BEGIN P2PVPN unterminated"), std::nullopt);
}

class ArmorFile : public ::testing::Test {
 protected:
  test::TempDir tmp_{"p2p-armor"};
  const fs::path dir_ = tmp_.path();
};

TEST_F(ArmorFile, WriteCreatesWithModeAndRefusesExisting) {
  const fs::path p = dir_ / "k";
  ASSERT_TRUE(write_armored_file(p, "secret\n", 0600, false));
  EXPECT_EQ(test::file_mode(p), 0600u);
  auto again = write_armored_file(p, "other\n", 0600, false);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos);
  auto text = read_armored_file(p, true);
  ASSERT_TRUE(text);
  EXPECT_EQ(*text, "secret\n");
}

TEST_F(ArmorFile, OverwriteReplacesAtomicallyWithTheNewMode) {
  const fs::path p = dir_ / "k";
  ASSERT_TRUE(write_armored_file(p, "public\n", 0644, false));
  ASSERT_EQ(::chmod(p.c_str(), 0644), 0);
  ASSERT_TRUE(write_armored_file(p, "secret\n", 0600, true));
  EXPECT_EQ(test::file_mode(p), 0600u) << "the old file's looser mode must not survive";
  EXPECT_EQ(*read_armored_file(p, true), "secret\n");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1)
      << "no temporary file left behind";
}

TEST_F(ArmorFile, PrivateReadRefusesGroupOrWorldAccessWithChmodHint) {
  const fs::path p = dir_ / "k";
  ASSERT_TRUE(write_armored_file(p, "x\n", 0600, false));
  for (mode_t bad : {0644, 0640, 0604, 0620, 0660}) {
    ASSERT_EQ(::chmod(p.c_str(), bad), 0);
    auto r = read_armored_file(p, true);
    ASSERT_FALSE(r) << std::oct << bad;
    EXPECT_NE(r.error().message.find("chmod 600 " + p.string()), std::string::npos)
        << r.error().message;
    EXPECT_TRUE(read_armored_file(p, false)) << "public files may be readable";
  }
  for (mode_t good : {0600, 0400}) {
    ASSERT_EQ(::chmod(p.c_str(), good), 0);
    EXPECT_TRUE(read_armored_file(p, true)) << std::oct << good;
  }
}

TEST_F(ArmorFile, ReadRejectsMissingDirectoriesAndHugeFiles) {
  EXPECT_NE(read_armored_file(dir_ / "missing", false).error().message.find("cannot open"),
            std::string::npos);
  EXPECT_NE(read_armored_file(dir_, false).error().message.find("not a regular file"),
            std::string::npos);
  const fs::path big = dir_ / "big";
  std::ofstream(big) << std::string(kMaxArmorText + 1, 'A');
  EXPECT_NE(read_armored_file(big, false).error().message.find("more than the"), std::string::npos);
  std::ofstream(big, std::ios::trunc) << std::string(kMaxArmorText, 'A');
  EXPECT_TRUE(read_armored_file(big, false)) << "exactly the limit is fine";
}

TEST_F(ArmorFile, WriteIntoMissingDirectoryFails) {
  auto r = write_armored_file(dir_ / "nope" / "k", "x", 0600, false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cannot create"), std::string::npos);
}

}  // namespace
}  // namespace p2p::crypto
