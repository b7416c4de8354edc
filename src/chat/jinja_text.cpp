#include "chat/jinja_text.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace nnterp::chat::jinja_detail {

namespace {

// Undecodable bytes map to lone surrogates U+DC80..U+DCFF and back (Python's surrogateescape).
constexpr char32_t kEscapedByteBase = 0xDC00;

bool in_range(char32_t c, char32_t lo, char32_t hi) { return c >= lo && c <= hi; }

}  // namespace

char32_t decode_utf8(std::string_view s, size_t& pos) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3, cp = b0 & 0x07, min = 0x10000;
  } else {
    ++pos;
    return kEscapedByteBase + b0;
  }
  if (pos + extra >= s.size()) {
    ++pos;
    return kEscapedByteBase + b0;
  }
  for (int i = 1; i <= extra; ++i) {
    const unsigned char b = byte(pos + i);
    if ((b & 0xC0) != 0x80) {
      ++pos;
      return kEscapedByteBase + b0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || in_range(cp, 0xD800, 0xDFFF)) {
    ++pos;
    return kEscapedByteBase + b0;
  }
  pos += extra + 1;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (in_range(cp, 0xDC80, 0xDCFF)) {
    out += static_cast<char>(cp - kEscapedByteBase);  // an undecodable byte, restored
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::u32string to_u32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) out += decode_utf8(s, pos);
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

size_t count_code_points(std::string_view s) {
  size_t n = 0;
  for (size_t pos = 0; pos < s.size(); ++n) {
    const unsigned char b = static_cast<unsigned char>(s[pos]);
    if (b < 0x80) {
      ++pos;
    } else {
      decode_utf8(s, pos);
    }
  }
  return n;
}

bool is_space(char32_t c) {
  return in_range(c, 0x09, 0x0D) || in_range(c, 0x1C, 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         in_range(c, 0x2000, 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

size_t space_length_at(std::string_view s, size_t pos) {
  if (pos >= s.size()) return 0;
  const unsigned char b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) return is_space(b) ? 1 : 0;
  size_t next = pos;
  const char32_t c = decode_utf8(s, next);
  return is_space(c) ? next - pos : 0;
}

std::string_view strip_spaces_right(std::string_view s) {
  // Walk back over whole code points: find the start of each trailing character.
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80 && end - start < 4) --start;
    size_t pos = start;
    const char32_t c = decode_utf8(s, pos);
    if (pos != end) {  // not a well-formed character ending here: a stray byte
      start = end - 1;
      pos = start;
      if (!is_space(decode_utf8(s, pos))) break;
    } else if (!is_space(c)) {
      break;
    }
    end = start;
  }
  return s.substr(0, end);
}

// ---- case mapping -------------------------------------------------------------------------

namespace {

// Ranges where upper and lower case letters alternate: even code point upper, odd lower
// (or the reverse when `odd_upper`).
struct AlternatingRange {
  char32_t first, last;
  bool odd_upper;
};
constexpr AlternatingRange kAlternating[] = {
    {0x0100, 0x012F, false}, {0x0132, 0x0137, false}, {0x0139, 0x0148, true},  {0x014A, 0x0177, false},
    {0x0179, 0x017E, true},  {0x0182, 0x0185, false}, {0x01A0, 0x01A5, false}, {0x01CD, 0x01DC, true},
    {0x01DE, 0x01EF, false}, {0x01F8, 0x021F, false}, {0x0222, 0x0233, false}, {0x0246, 0x024F, false},
    {0x03D8, 0x03EF, false}, {0x0460, 0x0481, false}, {0x048A, 0x04BF, false}, {0x04C1, 0x04CE, true},
    {0x04D0, 0x052F, false}, {0x1E00, 0x1E95, false}, {0x1EA0, 0x1EFF, false},
};

// Ranges where a block of upper case letters maps to a block of lower case ones at an offset.
struct OffsetRange {
  char32_t upper_first, upper_last;
  int32_t to_lower;  // lower = upper + to_lower
};
constexpr OffsetRange kOffset[] = {
    {0x0041, 0x005A, 32},  {0x00C0, 0x00D6, 32},  {0x00D8, 0x00DE, 32},  {0x0391, 0x03A1, 32},
    {0x03A3, 0x03AB, 32},  {0x0388, 0x038A, 37},  {0x038E, 0x038F, 63},  {0x0410, 0x042F, 32},
    {0x0400, 0x040F, 80},  {0x0531, 0x0556, 48},  {0x1F08, 0x1F0F, -8},  {0x1F18, 0x1F1D, -8},
    {0x1F28, 0x1F2F, -8},  {0x1F38, 0x1F3F, -8},  {0x1F48, 0x1F4D, -8},  {0x1F68, 0x1F6F, -8},
    {0xFF21, 0xFF3A, 32},  {0x10400, 0x10427, 40},
};

// Single pairs not covered above.
struct Pair {
  char32_t upper, lower;
};
constexpr Pair kPairs[] = {
    {0x0178, 0x00FF}, {0x0386, 0x03AC}, {0x038C, 0x03CC}, {0x04C0, 0x04CF}, {0x0187, 0x0188},
    {0x018B, 0x018C}, {0x0191, 0x0192}, {0x0198, 0x0199}, {0x01A7, 0x01A8}, {0x01AC, 0x01AD},
    {0x01AF, 0x01B0}, {0x01B3, 0x01B4}, {0x01B5, 0x01B6}, {0x01B8, 0x01B9}, {0x01BC, 0x01BD},
    {0x01C4, 0x01C6}, {0x01C7, 0x01C9}, {0x01CA, 0x01CC}, {0x01F1, 0x01F3}, {0x01F4, 0x01F5},
};

// Lower case letters whose upper case maps back to another letter (Python's simple case mapping).
struct OneWay {
  char32_t lower, upper;
};
constexpr OneWay kUpperOnly[] = {
    {0x00B5, 0x039C},  // micro sign -> GREEK CAPITAL MU
    {0x0131, 0x0049},  // dotless i -> I
    {0x017F, 0x0053},  // long s -> S
    {0x03C2, 0x03A3},  // final sigma -> SIGMA
};

char32_t lookup_lower(char32_t c) {
  for (const auto& r : kOffset) {
    if (in_range(c, r.upper_first, r.upper_last)) return static_cast<char32_t>(static_cast<int32_t>(c) + r.to_lower);
  }
  for (const auto& r : kAlternating) {
    if (in_range(c, r.first, r.last) && ((c & 1) == (r.odd_upper ? 1u : 0u))) return c + 1;
  }
  for (const auto& p : kPairs) {
    if (p.upper == c) return p.lower;
  }
  if (c == 0x0130) return 0x0069;  // I WITH DOT ABOVE (Python gives "i̇"; the dot is dropped here)
  return c;
}

char32_t lookup_upper(char32_t c) {
  for (const auto& r : kOffset) {
    const auto lo_first = static_cast<char32_t>(static_cast<int32_t>(r.upper_first) + r.to_lower);
    const auto lo_last = static_cast<char32_t>(static_cast<int32_t>(r.upper_last) + r.to_lower);
    if (in_range(c, lo_first, lo_last)) return static_cast<char32_t>(static_cast<int32_t>(c) - r.to_lower);
  }
  for (const auto& r : kAlternating) {
    if (in_range(c, r.first, r.last) && ((c & 1) == (r.odd_upper ? 0u : 1u))) return c - 1;
  }
  for (const auto& p : kPairs) {
    if (p.lower == c) return p.upper;
  }
  for (const auto& p : kUpperOnly) {
    if (p.lower == c) return p.upper;
  }
  return c;
}

}  // namespace

char32_t to_lower(char32_t c) {
  if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
  return lookup_lower(c);
}

char32_t to_upper(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
  return lookup_upper(c);
}

bool is_upper(char32_t c) { return to_lower(c) != c; }
bool is_lower(char32_t c) { return to_upper(c) != c || c == 0xDF || c == 0x0149 || c == 0x0138; }
bool is_cased(char32_t c) { return is_upper(c) || is_lower(c); }

bool is_alpha(char32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (is_cased(c)) return true;
  if (c == 0xD7 || c == 0xF7 || c == 0x375 || c == 0x37E || c == 0x384 || c == 0x385 || c == 0x387) return false;
  return c == 0xAA || c == 0xBA || in_range(c, 0xC0, 0x24F) || in_range(c, 0x250, 0x2C1) || in_range(c, 0x370, 0x3FF) ||
         in_range(c, 0x400, 0x481) || in_range(c, 0x48A, 0x52F) || in_range(c, 0x531, 0x556) ||
         in_range(c, 0x560, 0x588) || in_range(c, 0x5D0, 0x5EA) || in_range(c, 0x620, 0x64A) ||
         in_range(c, 0x671, 0x6D3) || in_range(c, 0x904, 0x939) || in_range(c, 0xE01, 0xE30) ||
         in_range(c, 0x10A0, 0x10FF) || in_range(c, 0x1100, 0x11FF) || in_range(c, 0x1E00, 0x1FBC) ||
         in_range(c, 0x3041, 0x3096) || in_range(c, 0x30A1, 0x30FA) || in_range(c, 0x3105, 0x312F) ||
         in_range(c, 0x3131, 0x318E) || in_range(c, 0x3400, 0x4DBF) || in_range(c, 0x4E00, 0x9FFF) ||
         in_range(c, 0xAC00, 0xD7A3) || in_range(c, 0xF900, 0xFAFF) || in_range(c, 0xFF21, 0xFF3A) ||
         in_range(c, 0xFF41, 0xFF5A) || in_range(c, 0xFF66, 0xFFDC) || in_range(c, 0x20000, 0x3134A);
}

bool is_digit(char32_t c) {
  return in_range(c, '0', '9') || c == 0xB2 || c == 0xB3 || c == 0xB9 || in_range(c, 0x660, 0x669) ||
         in_range(c, 0x6F0, 0x6F9) || in_range(c, 0x966, 0x96F) || in_range(c, 0xFF10, 0xFF19);
}

bool is_word_char(char32_t c) { return c == '_' || is_alpha(c) || is_digit(c); }

bool is_printable(char32_t c) {
  if (c < 0x20 || in_range(c, 0x7F, 0xA0)) return false;
  if (c < 0xAD) return true;
  if (c == 0xAD || c == 0x1680 || in_range(c, 0x2000, 0x200F) || in_range(c, 0x2028, 0x202F) ||
      in_range(c, 0x205F, 0x2064) || in_range(c, 0x2066, 0x206F) || c == 0x3000 || c == 0xFEFF ||
      in_range(c, 0xFFF9, 0xFFFB) || in_range(c, 0x600, 0x605) || c == 0x61C || c == 0x6DD || c == 0x70F ||
      c == 0x180E || in_range(c, 0x1D173, 0x1D17A) || c == 0xE0001 || in_range(c, 0xE0020, 0xE007F)) {
    return false;
  }
  if (in_range(c, 0xD800, 0xDFFF) || in_range(c, 0xE000, 0xF8FF) || in_range(c, 0xFDD0, 0xFDEF) ||
      (c & 0xFFFE) == 0xFFFE || c >= 0xF0000) {
    return false;  // surrogates, private use, noncharacters
  }
  return true;
}

bool is_line_break(char32_t c) {
  return in_range(c, 0x0A, 0x0D) || in_range(c, 0x1C, 0x1E) || c == 0x85 || c == 0x2028 || c == 0x2029;
}

std::string py_upper(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (c == 0xDF) {
      out += "SS";  // Python's full case mapping: "ß".upper() == "SS"
    } else {
      append_utf8(out, to_upper(c));
    }
  }
  return out;
}

std::string py_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) append_utf8(out, to_lower(decode_utf8(s, pos)));
  return out;
}

// ---- numbers ------------------------------------------------------------------------------

std::string repr_float(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  // The shortest digit string that reads back as x; printf rounds correctly, so the first
  // precision that round-trips gives the same digits as Python's repr.
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*e", precision - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  // buf is "[-]d[.ddd]e[+-]XX": split into sign, digits and decimal exponent.
  std::string text(buf);
  const bool negative = text[0] == '-';
  if (negative) text.erase(0, 1);
  const size_t e = text.find('e');
  const int exponent = std::atoi(text.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i) {
    if (text[i] != '.') digits += text[i];
  }
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decimal_point = exponent + 1;  // digits are 0.d1d2... x 10^decimal_point
  std::string out = negative ? "-" : "";
  if (decimal_point > -4 && decimal_point <= 16) {
    if (decimal_point <= 0) {
      out += "0." + std::string(-decimal_point, '0') + digits;
    } else if (static_cast<size_t>(decimal_point) >= digits.size()) {
      out += digits + std::string(decimal_point - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, decimal_point) + "." + digits.substr(decimal_point);
    }
  } else {
    out += digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    const int shown = decimal_point - 1;
    char exp_buf[16];
    std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", shown < 0 ? '-' : '+', shown < 0 ? -shown : shown);
    out += exp_buf;
  }
  return out;
}

std::string repr_int(int64_t x) { return std::to_string(x); }

void append_hex_escape(std::string& out, char32_t c) {
  char buf[16];
  if (c <= 0xFF) {
    std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
  } else if (c <= 0xFFFF) {
    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
  } else {
    std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
  }
  out += buf;
}

}  // namespace nnterp::chat::jinja_detail
