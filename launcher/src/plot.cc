#include "mlscale/launcher/plot.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace mlscale::launcher {
namespace {

struct Color {
  std::uint8_t r, g, b;
};
constexpr Color kWhite{255, 255, 255}, kAxis{60, 60, 60}, kGrid{225, 225, 225}, kBlue{31, 119, 180},
    kOrange{255, 127, 14}, kGrey{150, 150, 150}, kRed{214, 39, 40};

// A 3x5 pixel font for the axis labels: digits, '.', '-', 'e' (numbers) and the
// letters of "trial" and "best"; each glyph is 5 rows of 3 bits.
std::array<std::uint8_t, 5> Glyph(char c) {
  switch (c) {
    case '0': return {7, 5, 5, 5, 7};
    case '1': return {2, 6, 2, 2, 7};
    case '2': return {7, 1, 7, 4, 7};
    case '3': return {7, 1, 7, 1, 7};
    case '4': return {5, 5, 7, 1, 1};
    case '5': return {7, 4, 7, 1, 7};
    case '6': return {7, 4, 7, 5, 7};
    case '7': return {7, 1, 1, 1, 1};
    case '8': return {7, 5, 7, 5, 7};
    case '9': return {7, 5, 7, 1, 7};
    case '.': return {0, 0, 0, 0, 2};
    case '-': return {0, 0, 7, 0, 0};
    case '+': return {0, 2, 7, 2, 0};
    case 'e': return {0, 7, 7, 4, 7};
    case 't': return {2, 7, 2, 2, 3};
    case 'r': return {0, 6, 5, 4, 4};
    case 'i': return {2, 0, 2, 2, 2};
    case 'a': return {0, 7, 1, 7, 7};
    case 'l': return {6, 2, 2, 2, 7};
    case 'b': return {4, 4, 7, 5, 7};
    case 's': return {0, 7, 6, 1, 7};
    default: return {0, 0, 0, 0, 0};
  }
}

class Canvas {
 public:
  Canvas(int width, int height) {
    image_.width = width;
    image_.height = height;
    image_.rgb.assign(static_cast<std::size_t>(width) * height * 3, 255);
  }
  void Set(int x, int y, Color c) {
    if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
    std::size_t i = (static_cast<std::size_t>(y) * image_.width + x) * 3;
    image_.rgb[i] = c.r;
    image_.rgb[i + 1] = c.g;
    image_.rgb[i + 2] = c.b;
  }
  void Fill(int x0, int y0, int x1, int y1, Color c) {
    for (int y = std::min(y0, y1); y <= std::max(y0, y1); ++y) {
      for (int x = std::min(x0, x1); x <= std::max(x0, x1); ++x) Set(x, y, c);
    }
  }
  // A line `thickness` pixels wide (Bresenham with a square pen).
  void Line(int x0, int y0, int x1, int y1, Color c, int thickness = 1) {
    int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    for (;;) {
      Fill(x0 - thickness / 2, y0 - thickness / 2, x0 + (thickness - 1) / 2, y0 + (thickness - 1) / 2, c);
      if (x0 == x1 && y0 == y1) break;
      int e2 = 2 * error;
      if (e2 >= dy) { error += dy; x0 += sx; }
      if (e2 <= dx) { error += dx; y0 += sy; }
    }
  }
  void Disc(int cx, int cy, int radius, Color c) {
    for (int y = -radius; y <= radius; ++y) {
      for (int x = -radius; x <= radius; ++x) {
        if (x * x + y * y <= radius * radius) Set(cx + x, cy + y, c);
      }
    }
  }
  // Text at scale `scale` (each font pixel a scale x scale square), top-left at (x, y).
  void Text(int x, int y, const std::string& text, Color c, int scale = 2) {
    for (char ch : text) {
      auto glyph = Glyph(ch);
      for (int row = 0; row < 5; ++row) {
        for (int column = 0; column < 3; ++column) {
          if ((glyph[row] >> (2 - column)) & 1) {
            Fill(x + column * scale, y + row * scale, x + column * scale + scale - 1, y + row * scale + scale - 1, c);
          }
        }
      }
      x += 4 * scale;
    }
  }
  static int TextWidth(const std::string& text, int scale = 2) { return static_cast<int>(text.size()) * 4 * scale; }
  const Image& image() const { return image_; }

 private:
  Image image_;
};

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

void AppendBigEndian(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xff));
}

void AppendChunk(std::string& out, const char* type, const std::string& data) {
  AppendBigEndian(out, static_cast<std::uint32_t>(data.size()));
  std::string body = std::string(type, 4) + data;
  out += body;
  AppendBigEndian(out, static_cast<std::uint32_t>(
                           ::crc32(0, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()))));
}

}  // namespace

std::string EncodePng(const Image& image) {
  // Each row: filter type 0 (none), then its RGB bytes.
  std::string raw;
  raw.reserve(static_cast<std::size_t>(image.height) * (image.width * 3 + 1));
  for (int y = 0; y < image.height; ++y) {
    raw.push_back('\0');
    raw.append(reinterpret_cast<const char*>(image.rgb.data()) + static_cast<std::size_t>(y) * image.width * 3,
               static_cast<std::size_t>(image.width) * 3);
  }
  uLongf compressed_size = ::compressBound(static_cast<uLong>(raw.size()));
  std::string compressed(compressed_size, '\0');
  ::compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_size,
              reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 9);
  compressed.resize(compressed_size);

  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string header;
  AppendBigEndian(header, static_cast<std::uint32_t>(image.width));
  AppendBigEndian(header, static_cast<std::uint32_t>(image.height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8 bits, truecolour, deflate, no filter choice, no interlace
  AppendChunk(png, "IHDR", header);
  AppendChunk(png, "IDAT", compressed);
  AppendChunk(png, "IEND", "");
  return png;
}

Status WriteSweepPlot(const std::string& path, const std::vector<PlotPoint>& points, bool maximize, int width,
                      int height) {
  Canvas canvas(width, height);
  const int left = 90, right = width - 20, top = 20, bottom = height - 60;
  double low = INFINITY, high = -INFINITY;
  for (const auto& p : points) {
    if (p.value) {
      low = std::min(low, *p.value);
      high = std::max(high, *p.value);
    }
  }
  if (!std::isfinite(low)) low = 0, high = 1;
  if (high - low < 1e-12) low -= 0.5, high += 0.5;
  double margin = (high - low) * 0.05;
  low -= margin;
  high += margin;
  const std::size_t count = std::max<std::size_t>(points.size(), 1);
  auto x_of = [&](std::size_t i) {
    return count == 1 ? (left + right) / 2 : left + 20 + static_cast<int>(i * (right - left - 40) / (count - 1));
  };
  auto y_of = [&](double v) { return bottom - static_cast<int>(std::lround((v - low) / (high - low) * (bottom - top))); };

  for (int k = 0; k <= 4; ++k) {  // horizontal grid lines with their values
    double v = low + (high - low) * k / 4;
    int y = y_of(v);
    canvas.Line(left, y, right, y, kGrid);
    std::string label = Number(v);
    canvas.Text(left - 8 - Canvas::TextWidth(label), y - 5, label, kAxis);
  }
  canvas.Line(left, top, left, bottom, kAxis, 2);
  canvas.Line(left, bottom, right, bottom, kAxis, 2);
  for (std::size_t i = 0; i < points.size(); ++i) {  // a tick per trial, labelled when there is room
    int x = x_of(i);
    canvas.Line(x, bottom, x, bottom + 5, kAxis);
    if (points.size() <= 20 || i % ((points.size() + 19) / 20) == 0) {
      std::string label = std::to_string(i);
      canvas.Text(x - Canvas::TextWidth(label) / 2, bottom + 10, label, kAxis);
    }
  }
  canvas.Text((left + right) / 2 - Canvas::TextWidth("trial") / 2, bottom + 32, "trial", kAxis);

  // The best-so-far curve first, so the points are drawn over it.
  std::optional<double> best;
  std::optional<std::pair<int, int>> previous;
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (p.kind == PlotPoint::Kind::kCompleted && p.value &&
        (!best || (maximize ? *p.value > *best : *p.value < *best))) {
      best = p.value;
    }
    if (!best) continue;
    std::pair<int, int> here{x_of(i), y_of(*best)};
    if (previous) {
      canvas.Line(previous->first, previous->second, here.first, previous->second, kOrange, 3);
      canvas.Line(here.first, previous->second, here.first, here.second, kOrange, 3);
    }
    previous = here;
  }
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    int x = x_of(i);
    if (p.kind != PlotPoint::Kind::kCompleted || !p.value) {
      Color c = p.kind == PlotPoint::Kind::kFailed ? kRed : kGrey;
      canvas.Line(x - 5, bottom - 17, x + 5, bottom - 7, c, 2);
      canvas.Line(x - 5, bottom - 7, x + 5, bottom - 17, c, 2);
    } else {
      canvas.Disc(x, y_of(*p.value), 6, kBlue);
    }
  }
  // Legend: "best" beside an orange stroke, top right.
  canvas.Line(right - 90, top + 12, right - 60, top + 12, kOrange, 3);
  canvas.Text(right - 52, top + 7, "best", kAxis);

  std::string png = EncodePng(canvas.image());
  std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    out.write(png.data(), static_cast<std::streamsize>(png.size()));
    if (!out) return Internal("cannot write " + temporary);
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return Internal("cannot rename " + temporary + " to " + path + ": " + error.message());
  return Status::Ok();
}

}  // namespace mlscale::launcher
