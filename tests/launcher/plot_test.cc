// The sweep plot's PNG: a structurally valid file (signature, chunk CRCs, IHDR, the
// deflated rows) that decodes back to the image, and plots of odd histories.
#include "mlscale/launcher/plot.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mlscale::launcher {
namespace {

std::uint32_t BigEndian(const std::string& data, std::size_t at) {
  return (std::uint32_t(std::uint8_t(data[at])) << 24) | (std::uint32_t(std::uint8_t(data[at + 1])) << 16) |
         (std::uint32_t(std::uint8_t(data[at + 2])) << 8) | std::uint32_t(std::uint8_t(data[at + 3]));
}

struct Chunk {
  std::string type, data;
};

// Splits a PNG into its chunks, checking the signature and every CRC.
std::vector<Chunk> Chunks(const std::string& png) {
  std::vector<Chunk> chunks;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  for (std::size_t at = 8; at + 12 <= png.size();) {
    std::uint32_t length = BigEndian(png, at);
    std::string body = png.substr(at + 4, 4 + length);
    std::uint32_t crc = BigEndian(png, at + 8 + length);
    EXPECT_EQ(crc, ::crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size())));
    chunks.push_back({body.substr(0, 4), body.substr(4)});
    at += 12 + length;
  }
  return chunks;
}

TEST(EncodePng, DecodesBackToTheImage) {
  Image image{3, 2, {}};
  for (int i = 0; i < 3 * 2 * 3; ++i) image.rgb.push_back(static_cast<std::uint8_t>(i * 13));
  auto chunks = Chunks(EncodePng(image));
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].type, "IHDR");
  EXPECT_EQ(BigEndian(chunks[0].data, 0), 3u);
  EXPECT_EQ(BigEndian(chunks[0].data, 4), 2u);
  EXPECT_EQ(chunks[0].data.substr(8), std::string("\x08\x02\x00\x00\x00", 5));
  EXPECT_EQ(chunks[1].type, "IDAT");
  EXPECT_EQ(chunks[2].type, "IEND");
  std::string rows(2 * (1 + 3 * 3), '\0');
  uLongf size = static_cast<uLongf>(rows.size());
  ASSERT_EQ(::uncompress(reinterpret_cast<Bytef*>(rows.data()), &size,
                         reinterpret_cast<const Bytef*>(chunks[1].data.data()), static_cast<uLong>(chunks[1].data.size())),
            Z_OK);
  ASSERT_EQ(size, rows.size());
  for (int y = 0; y < 2; ++y) {
    EXPECT_EQ(rows[y * 10], '\0');  // filter: none
    EXPECT_EQ(rows.substr(y * 10 + 1, 9),
              std::string(reinterpret_cast<const char*>(image.rgb.data()) + y * 9, 9));
  }
}

TEST(WriteSweepPlot, WritesAPngForAnyHistory) {
  std::string path = ::testing::TempDir() + "/plot-test.png";
  using Kind = PlotPoint::Kind;
  std::vector<std::vector<PlotPoint>> histories = {
      {},                                                     // nothing yet
      {{Kind::kFailed, std::nullopt}},                        // no value at all
      {{Kind::kCompleted, 0.5}},                              // one point
      {{Kind::kCompleted, 2.0}, {Kind::kCompleted, 2.0}},     // a flat range
      {{Kind::kCompleted, 1e300}, {Kind::kStopped, std::nullopt}, {Kind::kCompleted, -1e300}},
  };
  std::vector<PlotPoint> many;
  for (int i = 0; i < 500; ++i) many.push_back({Kind::kCompleted, std::sin(i * 0.1)});
  histories.push_back(many);
  for (const auto& points : histories) {
    for (bool maximize : {false, true}) {
      ASSERT_TRUE(WriteSweepPlot(path, points, maximize).ok());
      std::ifstream file(path, std::ios::binary);
      std::stringstream text;
      text << file.rdbuf();
      auto chunks = Chunks(text.str());
      ASSERT_FALSE(chunks.empty());
      EXPECT_EQ(BigEndian(chunks[0].data, 0), 800u);
      EXPECT_EQ(BigEndian(chunks[0].data, 4), 480u);
    }
  }
  EXPECT_FALSE(WriteSweepPlot("/nonexistent-folder/plot.png", histories[2], true).ok());
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace mlscale::launcher
