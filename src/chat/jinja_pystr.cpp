#include "chat/jinja_pystr.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "chat/jinja_eval.hpp"
#include "chat/jinja_text.hpp"

namespace nnterp::chat::jinja_detail {

namespace {

// Python's slice bounds for find/count/startswith: negative counts from the end, clamped.
void adjust_bounds(int64_t length, std::optional<int64_t> start, std::optional<int64_t> end, int64_t& from,
                   int64_t& to) {
  from = start.value_or(0);
  to = end.value_or(length);
  if (to > length) to = length;
  if (to < 0) to = std::max<int64_t>(to + length, 0);
  if (from < 0) from = std::max<int64_t>(from + length, 0);
}

std::string repeat(std::string_view unit, int64_t n) {
  std::string out;
  for (int64_t i = 0; i < n; ++i) out.append(unit);
  return out;
}

std::string utf8_char(char32_t c) {
  std::string out;
  append_utf8(out, c);
  return out;
}

}  // namespace

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  const std::u32string text = to_u32(s);
  const std::u32string set = chars ? to_u32(*chars) : std::u32string();
  const auto strip_this = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : is_space(c); };
  size_t from = 0;
  size_t to = text.size();
  if (left) {
    while (from < to && strip_this(text[from])) ++from;
  }
  if (right) {
    while (to > from && strip_this(text[to - 1])) --to;
  }
  return to_utf8(std::u32string_view(text).substr(from, to - from));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t remaining = maxsplit < 0 ? std::numeric_limits<int64_t>::max() : maxsplit;
  if (sep) {
    if (sep->empty()) fail("empty separator");
    size_t start = 0;
    while (remaining-- > 0) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    out.emplace_back(s.substr(start));
    return out;
  }
  const std::u32string text = to_u32(s);
  const size_t n = text.size();
  size_t i = 0;
  while (remaining-- > 0) {
    while (i < n && is_space(text[i])) ++i;
    if (i == n) break;
    const size_t j = i;
    while (i < n && !is_space(text[i])) ++i;
    out.push_back(to_utf8(std::u32string_view(text).substr(j, i - j)));
  }
  if (i < n) {
    while (i < n && is_space(text[i])) ++i;
    if (i != n) out.push_back(to_utf8(std::u32string_view(text).substr(i)));
  }
  return out;
}

std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit) {
  std::vector<std::string> out;
  int64_t remaining = maxsplit < 0 ? std::numeric_limits<int64_t>::max() : maxsplit;
  if (sep) {
    if (sep->empty()) fail("empty separator");
    size_t end = s.size();
    while (remaining-- > 0 && end >= sep->size()) {
      const size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      out.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    out.emplace_back(s.substr(0, end));
    std::reverse(out.begin(), out.end());
    return out;
  }
  const std::u32string text = to_u32(s);
  auto i = static_cast<int64_t>(text.size()) - 1;
  while (remaining-- > 0) {
    while (i >= 0 && is_space(text[static_cast<size_t>(i)])) --i;
    if (i < 0) break;
    const int64_t j = i;
    while (i >= 0 && !is_space(text[static_cast<size_t>(i)])) --i;
    out.push_back(to_utf8(std::u32string_view(text).substr(static_cast<size_t>(i + 1), static_cast<size_t>(j - i))));
  }
  if (i >= 0) {
    while (i >= 0 && is_space(text[static_cast<size_t>(i)])) --i;
    if (i >= 0) out.push_back(to_utf8(std::u32string_view(text).substr(0, static_cast<size_t>(i + 1))));
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  const std::u32string text = to_u32(s);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    if (!is_line_break(text[i])) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (text[i] == '\r' && end < text.size() && text[end] == '\n') ++end;
    out.push_back(to_utf8(std::u32string_view(text).substr(start, (keepends ? end : i) - start)));
    start = i = end;
  }
  if (start < text.size()) out.push_back(to_utf8(std::u32string_view(text).substr(start)));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       size_t max_bytes) {
  if (count < 0) count = std::numeric_limits<int64_t>::max();
  // The result's size, checked before building it ("ab".replace("", s) grows quadratically).
  const auto occurrences = static_cast<size_t>(std::min<int64_t>(
      count, old.empty() ? static_cast<int64_t>(count_code_points(s)) + 1 : py_count(s, old, std::nullopt, std::nullopt)));
  const long double size = static_cast<long double>(s.size()) +
                           static_cast<long double>(occurrences) * (static_cast<long double>(replacement.size()) - old.size());
  if (size > static_cast<long double>(max_bytes)) {
    fail_limit("a string of " + std::to_string(static_cast<unsigned long long>(size)) + " bytes exceeds max_output_bytes (" +
               std::to_string(max_bytes) + ")");
  }
  std::string out;
  if (old.empty()) {
    // "ab".replace("", "-") == "-a-b-": the replacement goes before every character and at the end.
    size_t pos = 0;
    while (count > 0) {
      out.append(replacement);
      --count;
      if (pos >= s.size()) return out;
      const size_t start = pos;
      decode_utf8(s, pos);
      out.append(s.substr(start, pos - start));
    }
    out.append(s.substr(pos));
    return out;
  }
  size_t start = 0;
  while (count-- > 0) {
    const size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    out.append(s.substr(start, at - start));
    out.append(replacement);
    start = at + old.size();
  }
  out.append(s.substr(start));
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::string out;
  bool first = true;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (first) {
      out += py_upper(utf8_char(c));
      first = false;
    } else {
      append_utf8(out, to_lower(c));
    }
  }
  return out;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (previous_cased) {
      append_utf8(out, to_lower(c));
    } else {
      out += py_upper(utf8_char(c));
    }
    previous_cased = is_cased(c);
  }
  return out;
}

std::string py_swapcase(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (is_upper(c)) {
      append_utf8(out, to_lower(c));
    } else if (is_lower(c)) {
      out += py_upper(utf8_char(c));
    } else {
      append_utf8(out, c);
    }
  }
  return out;
}

std::string py_pad(std::string_view s, int64_t width, char32_t fill, char align) {
  const auto length = static_cast<int64_t>(count_code_points(s));
  if (width <= length) return std::string(s);
  const int64_t pad = width - length;
  const std::string f = utf8_char(fill);
  if (align == '<') return std::string(s) + repeat(f, pad);
  if (align == '>') return repeat(f, pad) + std::string(s);
  return repeat(f, pad / 2) + std::string(s) + repeat(f, pad - pad / 2);  // format()'s '^'
}

std::string py_center(std::string_view s, int64_t width, char32_t fill) {
  const auto length = static_cast<int64_t>(count_code_points(s));
  if (width <= length) return std::string(s);
  const int64_t margin = width - length;
  const int64_t left = margin / 2 + (margin & width & 1);
  const std::string f = utf8_char(fill);
  return repeat(f, left) + std::string(s) + repeat(f, margin - left);
}

int64_t py_find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
                bool reverse) {
  const std::u32string text = to_u32(s);
  const std::u32string needle = to_u32(sub);
  int64_t from;
  int64_t to;
  adjust_bounds(static_cast<int64_t>(text.size()), start, end, from, to);
  const auto n = static_cast<int64_t>(needle.size());
  if (from > static_cast<int64_t>(text.size()) || to - from < n) return -1;
  const std::u32string_view window = std::u32string_view(text).substr(static_cast<size_t>(from), static_cast<size_t>(to - from));
  const size_t at = reverse ? window.rfind(needle) : window.find(needle);
  return at == std::u32string_view::npos ? -1 : from + static_cast<int64_t>(at);
}

int64_t py_count(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end) {
  const std::u32string text = to_u32(s);
  const std::u32string needle = to_u32(sub);
  int64_t from;
  int64_t to;
  adjust_bounds(static_cast<int64_t>(text.size()), start, end, from, to);
  if (from > static_cast<int64_t>(text.size()) || to < from) return 0;
  if (needle.empty()) return to - from + 1;
  int64_t count = 0;
  const std::u32string_view window = std::u32string_view(text).substr(static_cast<size_t>(from), static_cast<size_t>(to - from));
  for (size_t at = window.find(needle); at != std::u32string_view::npos; at = window.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

bool py_affix(std::string_view s, std::string_view affix, std::optional<int64_t> start, std::optional<int64_t> end,
              bool suffix) {
  if (!start && !end) {
    if (affix.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - affix.size(), affix.size(), affix) == 0 : s.compare(0, affix.size(), affix) == 0;
  }
  const std::u32string text = to_u32(s);
  const std::u32string a = to_u32(affix);
  int64_t from;
  int64_t to;
  adjust_bounds(static_cast<int64_t>(text.size()), start, end, from, to);
  if (from > static_cast<int64_t>(text.size())) return false;
  if (to - from < static_cast<int64_t>(a.size())) return false;
  const std::u32string_view window = std::u32string_view(text).substr(static_cast<size_t>(from), static_cast<size_t>(to - from));
  return suffix ? window.substr(window.size() - a.size()) == a : window.substr(0, a.size()) == a;
}

// ---- number parsing -----------------------------------------------------------------------

namespace {

std::string_view strip_ascii_and_unicode_spaces(std::string_view s, std::string& storage) {
  storage = py_strip(s, std::nullopt, true, true);
  return storage;
}

int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

}  // namespace

std::optional<int64_t> parse_py_int(std::string_view s, int base) {
  std::string storage;
  std::string_view t = strip_ascii_and_unicode_spaces(s, storage);
  if (base != 0 && (base < 2 || base > 36)) return std::nullopt;
  bool negative = false;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    negative = t[0] == '-';
    t.remove_prefix(1);
  }
  bool prefixed = false;
  if (t.size() >= 2 && t[0] == '0') {
    const char p = static_cast<char>(t[1] | 0x20);
    const int prefix_base = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (prefix_base != 0 && (base == 0 || base == prefix_base)) {
      base = prefix_base;
      t.remove_prefix(2);
      prefixed = true;
    }
  }
  if (base == 0) {
    base = 10;
    // Base 0 rejects leading zeros in non-zero decimals ("010").
    if (t.size() > 1 && t[0] == '0' && t.find_first_not_of("0_") != std::string_view::npos) return std::nullopt;
  }
  if (t.empty()) return std::nullopt;
  uint64_t value = 0;
  bool previous_underscore = prefixed;  // "0x_1f" is valid: an underscore may follow the prefix
  bool any_digit = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '_') {
      if (!any_digit && !prefixed) return std::nullopt;
      if (previous_underscore && any_digit) return std::nullopt;
      if (i + 1 == t.size()) return std::nullopt;
      previous_underscore = true;
      continue;
    }
    const int d = digit_value(t[i]);
    if (d >= base) return std::nullopt;
    previous_underscore = false;
    any_digit = true;
    if (value > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - static_cast<uint64_t>(d)) / static_cast<uint64_t>(base)) {
      fail("integer too large for this interpreter (64-bit)");
    }
    value = value * static_cast<uint64_t>(base) + static_cast<uint64_t>(d);
  }
  if (!any_digit) return std::nullopt;
  return negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
}

std::optional<double> parse_py_float(std::string_view s) {
  std::string storage;
  std::string_view t = strip_ascii_and_unicode_spaces(s, storage);
  std::string clean;
  size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) clean += t[i++];
  std::string rest(t.substr(i));
  std::string lower;
  for (char c : rest) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower == "inf" || lower == "infinity") return clean == "-" ? -HUGE_VAL : HUGE_VAL;
  if (lower == "nan") return std::nan("");
  // digits [. digits] [e [sign] digits], with single underscores between digits
  const auto digits = [&](size_t& p) {
    size_t count = 0;
    while (p < t.size()) {
      if (t[p] >= '0' && t[p] <= '9') {
        clean += t[p++];
        ++count;
      } else if (t[p] == '_' && count > 0 && p + 1 < t.size() && t[p + 1] >= '0' && t[p + 1] <= '9') {
        ++p;
      } else {
        break;
      }
    }
    return count;
  };
  size_t mantissa = digits(i);
  if (i < t.size() && t[i] == '.') {
    clean += t[i++];
    mantissa += digits(i);
  }
  if (mantissa == 0) return std::nullopt;
  if (i < t.size() && (t[i] | 0x20) == 'e') {
    clean += t[i++];
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) clean += t[i++];
    if (digits(i) == 0) return std::nullopt;
  }
  if (i != t.size()) return std::nullopt;
  return std::strtod(clean.c_str(), nullptr);
}

// ---- printf-style formatting ----------------------------------------------------------------

namespace {

struct Spec {
  bool left = false, plus = false, space = false, alt = false, zero = false;
  int64_t width = -1;
  int64_t precision = -1;
};

std::string ascii_escape(std::string_view s) {
  std::string out;
  for (size_t pos = 0; pos < s.size();) {
    const char32_t c = decode_utf8(s, pos);
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      append_hex_escape(out, c);
    }
  }
  return out;
}

// Pads a formatted number: zeros go between the sign/prefix and the digits.
std::string pad_number(const std::string& sign_and_prefix, const std::string& digits, const Spec& spec,
                       bool allow_zero) {
  const auto length = static_cast<int64_t>(sign_and_prefix.size() + digits.size());
  if (spec.width <= length) return sign_and_prefix + digits;
  const auto pad = static_cast<size_t>(spec.width - length);
  if (spec.left) return sign_and_prefix + digits + std::string(pad, ' ');
  if (spec.zero && allow_zero) return sign_and_prefix + std::string(pad, '0') + digits;
  return std::string(pad, ' ') + sign_and_prefix + digits;
}

std::string sign_of(bool negative, const Spec& spec) {
  if (negative) return "-";
  if (spec.plus) return "+";
  if (spec.space) return " ";
  return "";
}

std::string format_integer(int64_t v, char conv, const Spec& spec) {
  const bool negative = v < 0;
  uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  const int base = conv == 'x' || conv == 'X' ? 16 : conv == 'o' ? 8 : 10;
  std::string digits;
  do {
    const int d = static_cast<int>(magnitude % static_cast<uint64_t>(base));
    digits += static_cast<char>(d < 10 ? '0' + d : (conv == 'X' ? 'A' : 'a') + d - 10);
    magnitude /= static_cast<uint64_t>(base);
  } while (magnitude);
  std::reverse(digits.begin(), digits.end());
  if (spec.precision > static_cast<int64_t>(digits.size())) {
    digits.insert(0, static_cast<size_t>(spec.precision) - digits.size(), '0');
  }
  std::string prefix;
  if (spec.alt && base == 16) prefix = conv == 'X' ? "0X" : "0x";
  if (spec.alt && base == 8) prefix = "0o";
  return pad_number(sign_of(negative, spec) + prefix, digits, spec, true);
}

std::string format_float(double v, char conv, const Spec& spec) {
  const int64_t precision = spec.precision < 0 ? 6 : spec.precision;
  if (!std::isfinite(v)) {
    std::string body = std::isnan(v) ? "nan" : "inf";
    if (conv == 'F' || conv == 'E' || conv == 'G') body = std::isnan(v) ? "NAN" : "INF";
    return pad_number(sign_of(!std::isnan(v) && v < 0, spec), body, spec, false);
  }
  std::string fmt = "%";
  if (spec.alt) fmt += '#';
  fmt += "." + std::to_string(std::min<int64_t>(precision, 400)) + conv;
  std::vector<char> buf(static_cast<size_t>(std::min<int64_t>(precision, 400)) + 400);
  std::snprintf(buf.data(), buf.size(), fmt.c_str(), std::fabs(v));
  return pad_number(sign_of(std::signbit(v), spec), buf.data(), spec, true);
}

std::string pad_text(const std::string& text, const Spec& spec) {
  const auto length = static_cast<int64_t>(count_code_points(text));
  if (spec.width <= length) return text;
  const std::string pad(static_cast<size_t>(spec.width - length), ' ');
  return spec.left ? text + pad : pad + text;
}

std::string truncate_code_points(const std::string& s, int64_t n) {
  size_t pos = 0;
  for (int64_t i = 0; i < n && pos < s.size(); ++i) decode_utf8(s, pos);
  return s.substr(0, pos);
}

}  // namespace

std::string percent_format(Interpreter& interp, const std::string& format, const Value& args, bool escape_args) {
  std::vector<Value> positional;
  const DictData* mapping = nullptr;
  bool mapping_like = false;  // Python treats any non-tuple, non-str subscriptable as a mapping here
  if (args.is_tuple()) {
    positional = args.items();
  } else {
    positional.push_back(args);
    if (args.is_dict()) mapping = &args.dict_data();
    // Python treats any argument with __getitem__ (but not str or tuple) as a mapping here,
    // which only matters for the "not all arguments converted" check.
    mapping_like = args.is_dict() || args.is_list() || args.is_undefined();
  }
  size_t next_arg = 0;
  const auto take_arg = [&]() -> const Value& {
    if (next_arg >= positional.size()) fail("not enough arguments for format string");
    return positional[next_arg++];
  };
  std::string out;
  for (size_t i = 0; i < format.size();) {
    if (format[i] != '%') {
      out += format[i++];
      continue;
    }
    const size_t spec_start = i++;
    if (i >= format.size()) fail("incomplete format");
    const Value* value = nullptr;
    Value keyed;
    if (format[i] == '(') {
      if (!mapping) fail("format requires a mapping");
      int depth = 1;
      const size_t key_start = ++i;
      while (i < format.size() && depth > 0) {
        if (format[i] == '(') ++depth;
        if (format[i] == ')') --depth;
        ++i;
      }
      if (depth > 0) fail("incomplete format key");
      const std::string key = format.substr(key_start, i - 1 - key_start);
      const Value* found = mapping->find(Value::string(key));
      if (!found) fail("KeyError: " + repr_string(key));
      keyed = *found;
      value = &keyed;
    }
    Spec spec;
    for (; i < format.size(); ++i) {
      const char c = format[i];
      if (c == '-') {
        spec.left = true;
      } else if (c == '+') {
        spec.plus = true;
      } else if (c == ' ') {
        spec.space = true;
      } else if (c == '#') {
        spec.alt = true;
      } else if (c == '0') {
        spec.zero = true;
      } else {
        break;
      }
    }
    const auto read_number = [&](int64_t& target) {
      if (i < format.size() && format[i] == '*') {
        const Value& n = take_arg();
        if (!n.is_integral()) fail("* wants int");
        target = n.as_int();
        ++i;
        return;
      }
      int64_t n = -1;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        n = (n < 0 ? 0 : n) * 10 + (format[i++] - '0');
        if (n > (int64_t{1} << 40)) fail("width too big");
      }
      target = n;
    };
    read_number(spec.width);
    if (spec.width < -1) {
      spec.left = true;
      spec.width = -spec.width;
    }
    if (i < format.size() && format[i] == '.') {
      ++i;
      read_number(spec.precision);
      if (spec.precision < 0) spec.precision = 0;
    }
    while (i < format.size() && (format[i] == 'h' || format[i] == 'l' || format[i] == 'L')) ++i;
    if (i >= format.size()) fail("incomplete format");
    const char conv = format[i++];
    if (conv == '%') {
      out += '%';
      continue;
    }
    interp.check_string_size(static_cast<size_t>(std::max<int64_t>(spec.width, 0)) + out.size());
    const Value& v = value ? *value : take_arg();
    switch (conv) {
      case 's':
      case 'r':
      case 'a': {
        std::string text = conv == 's' ? to_str(v) : repr(v);
        if (conv == 'a') text = ascii_escape(text);
        if (escape_args && !v.is_markup()) text = html_escape(text);
        if (spec.precision >= 0) text = truncate_code_points(text, spec.precision);
        out += pad_text(text, spec);
        break;
      }
      case 'd':
      case 'i':
      case 'u':
        if (!v.is_number()) fail(std::string("%") + conv + " format: a real number is required, not " + type_name(v));
        if (v.is_float()) {
          const double f = v.as_double();
          if (!std::isfinite(f)) fail("cannot convert float to integer");
          if (std::fabs(f) >= 9.2e18) fail("integer too large for this interpreter (64-bit)");
          out += format_integer(static_cast<int64_t>(std::trunc(f)), 'd', spec);
        } else {
          out += format_integer(v.as_int(), 'd', spec);
        }
        break;
      case 'x':
      case 'X':
      case 'o':
        if (!v.is_integral()) fail(std::string("%") + conv + " format: an integer is required, not " + type_name(v));
        out += format_integer(v.as_int(), conv, spec);
        break;
      case 'e':
      case 'E':
      case 'f':
      case 'F':
      case 'g':
      case 'G':
        if (!v.is_number()) fail("must be real number, not " + type_name(v));
        out += format_float(v.as_double(), conv, spec);
        break;
      case 'c': {
        std::string c;
        if (v.is_integral()) {
          if (v.as_int() < 0 || v.as_int() > 0x10FFFF) fail("%c arg not in range(0x110000)");
          append_utf8(c, static_cast<char32_t>(v.as_int()));
        } else if (v.is_string() && count_code_points(v.str()) == 1) {
          c = v.str();
        } else {
          fail("%c requires int or char");
        }
        out += pad_text(c, spec);
        break;
      }
      default: {
        char buf[96];
        std::snprintf(buf, sizeof buf, "unsupported format character '%c' (0x%x) at index %zu", conv,
                      static_cast<unsigned>(static_cast<unsigned char>(conv)), i - 1);
        (void)spec_start;
        fail(buf);
      }
    }
    interp.check_string_size(out.size());
  }
  if (!mapping_like && next_arg < positional.size()) fail("not all arguments converted during string formatting");
  return out;
}

// ---- str.format ---------------------------------------------------------------------------

namespace {

struct FormatSpec {
  char32_t fill = ' ';
  char align = 0;
  char sign = 0;
  bool alt = false;
  bool zero = false;
  int64_t width = -1;
  char grouping = 0;
  int64_t precision = -1;
  char type = 0;
};

FormatSpec parse_format_spec(const std::string& text) {
  FormatSpec spec;
  const std::u32string s = to_u32(text);
  size_t i = 0;
  const auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (s.size() >= 2 && is_align(s[1])) {
    spec.fill = s[0];
    spec.align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    spec.align = static_cast<char>(s[0]);
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '#') {
    spec.alt = true;
    ++i;
  }
  if (i < s.size() && s[i] == '0') {
    spec.zero = true;
    ++i;
  }
  const auto number = [&](int64_t& target) {
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      target = (target < 0 ? 0 : target) * 10 + static_cast<int64_t>(s[i++] - '0');
      if (target > (int64_t{1} << 40)) fail("Too many decimal digits in format string");
    }
  };
  number(spec.width);
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) spec.grouping = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '.') {
    ++i;
    const size_t before = i;
    number(spec.precision);
    if (i == before) fail("Format specifier missing precision");
  }
  if (i < s.size()) spec.type = static_cast<char>(s[i++]);
  if (i != s.size()) fail("Invalid format specifier '" + text + "'");
  return spec;
}

std::string group_digits(const std::string& digits, char separator, size_t every) {
  std::string out;
  const size_t n = digits.size();
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % every == 0) out += separator;
    out += digits[i];
  }
  return out;
}

std::string align_formatted(const std::string& sign, const std::string& body, const FormatSpec& spec,
                            char default_align) {
  char align = spec.align;
  char32_t fill = spec.fill;
  if (!align && spec.zero) {
    align = '=';
    fill = '0';
  }
  if (!align) align = default_align;
  const auto length = static_cast<int64_t>(count_code_points(sign) + count_code_points(body));
  if (spec.width <= length) return sign + body;
  const int64_t pad = spec.width - length;
  std::string f;
  append_utf8(f, fill);
  if (align == '=') return sign + repeat(f, pad) + body;
  return py_pad(sign + body, spec.width, fill, align);
}

std::string format_spec_number(const Value& v, const FormatSpec& spec) {
  char type = spec.type;
  const bool negative = v.is_float() ? std::signbit(v.as_double()) : v.as_int() < 0;
  const std::string sign = negative ? "-" : spec.sign == '+' ? "+" : spec.sign == ' ' ? " " : "";
  if (v.is_integral() && (type == 0 || type == 'd' || type == 'n' || type == 'b' || type == 'o' || type == 'x' ||
                          type == 'X' || type == 'c')) {
    if (spec.precision >= 0) fail("Precision not allowed in integer format specifier");
    const int64_t i = v.as_int();
    if (type == 'c') {
      std::string c;
      append_utf8(c, static_cast<char32_t>(i));
      return align_formatted("", c, spec, '<');
    }
    uint64_t magnitude = i < 0 ? 0 - static_cast<uint64_t>(i) : static_cast<uint64_t>(i);
    const int base = type == 'b' ? 2 : type == 'o' ? 8 : (type == 'x' || type == 'X') ? 16 : 10;
    std::string digits;
    do {
      const int d = static_cast<int>(magnitude % static_cast<uint64_t>(base));
      digits += static_cast<char>(d < 10 ? '0' + d : (type == 'X' ? 'A' : 'a') + d - 10);
      magnitude /= static_cast<uint64_t>(base);
    } while (magnitude);
    std::reverse(digits.begin(), digits.end());
    if (spec.grouping) digits = group_digits(digits, spec.grouping, base == 10 ? 3 : 4);
    std::string prefix;
    if (spec.alt && base != 10) prefix = base == 2 ? "0b" : base == 8 ? "0o" : type == 'X' ? "0X" : "0x";
    return align_formatted(sign + prefix, digits, spec, '>');
  }
  double f = v.as_double();
  if (type == 0 && spec.precision < 0) {
    return align_formatted(sign, repr_float(std::fabs(f)), spec, '>');
  }
  std::string body;
  if (!std::isfinite(f)) {
    body = std::isnan(f) ? "nan" : "inf";
    if (type == 'E' || type == 'F' || type == 'G') body = std::isnan(f) ? "NAN" : "INF";
    if (type == '%') body += '%';
    return align_formatted(std::isnan(f) ? (spec.sign == '+' ? "+" : "") : sign, body, spec, '>');
  }
  const int64_t precision = spec.precision < 0 ? 6 : std::min<int64_t>(spec.precision, 400);
  char conv = type;
  double shown = std::fabs(f);
  if (type == '%') {
    shown *= 100;
    conv = 'f';
  } else if (type == 0 || type == 'n') {
    conv = 'g';
  }
  std::string fmt = "%";
  if (spec.alt) fmt += '#';
  fmt += "." + std::to_string(precision) + conv;
  std::vector<char> buf(static_cast<size_t>(precision) + 400);
  std::snprintf(buf.data(), buf.size(), fmt.c_str(), shown);
  body = buf.data();
  if (type == 0 && body.find_first_of(".e") == std::string::npos) body += ".0";  // always a digit after the point
  if (spec.grouping) {
    const size_t int_end = body.find_first_not_of("0123456789");
    body = group_digits(body.substr(0, int_end), spec.grouping, 3) + (int_end == std::string::npos ? "" : body.substr(int_end));
  }
  if (type == '%') body += '%';
  return align_formatted(sign, body, spec, '>');
}

}  // namespace

namespace {

std::string format_value(Interpreter& interp, const Value& v, const std::string& spec_text) {
  if (spec_text.empty()) return to_str(v);
  const FormatSpec spec = parse_format_spec(spec_text);
  interp.check_string_size(static_cast<size_t>(std::max<int64_t>(spec.width, 0)));
  if (v.is_string()) {
    if (spec.type && spec.type != 's') fail(std::string("Unknown format code '") + spec.type + "' for object of type 'str'");
    if (spec.sign || spec.alt || spec.grouping) fail("Sign not allowed in string format specifier");
    if (spec.align == '=') fail("'=' alignment not allowed in string format specifier");
    std::string text = spec.precision >= 0 ? truncate_code_points(v.str(), spec.precision) : v.str();
    return align_formatted("", text, spec, '<');
  }
  if (v.is_number()) return format_spec_number(v, spec);
  fail("unsupported format string passed to " + type_name(v) + ".__format__");
}

}  // namespace

std::string brace_format(Interpreter& interp, const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  bool used_auto = false;
  bool used_manual = false;
  const auto lookup = [&](const std::string& field) -> Value {
    // first part: "" (next positional), a number, or a keyword name; then .attr / [key]
    size_t i = 0;
    while (i < field.size() && field[i] != '.' && field[i] != '[') ++i;
    const std::string first = field.substr(0, i);
    Value value;
    if (first.empty()) {
      if (used_manual) fail("cannot switch from manual field specification to automatic field numbering");
      used_auto = true;
      if (auto_index >= args.positional.size()) fail("Replacement index " + std::to_string(auto_index) + " out of range for positional args tuple");
      value = args.positional[auto_index++];
    } else if (first.find_first_not_of("0123456789") == std::string::npos) {
      if (used_auto) fail("cannot switch from automatic field numbering to manual field specification");
      used_manual = true;
      const size_t index = std::stoul(first);
      if (index >= args.positional.size()) fail("Replacement index " + first + " out of range for positional args tuple");
      value = args.positional[index];
    } else {
      bool found = false;
      for (const auto& [name, v] : args.keyword) {
        if (name == first) {
          value = v;
          found = true;
        }
      }
      if (!found) fail("KeyError: " + repr_string(first));
    }
    while (i < field.size()) {
      if (field[i] == '.') {
        size_t j = ++i;
        while (j < field.size() && field[j] != '.' && field[j] != '[') ++j;
        value = interp.get_attribute(value, field.substr(i, j - i));
        i = j;
      } else {
        const size_t close = field.find(']', i);
        if (close == std::string::npos) fail("Missing ']' in format string");
        const std::string key = field.substr(i + 1, close - i - 1);
        const bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
        value = interp.get_item(value, numeric ? Value::integer(std::stoll(key)) : Value::string(key));
        i = close + 1;
      }
    }
    return value;
  };
  for (size_t i = 0; i < format.size();) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') {
        out += '}';
        i += 2;
        continue;
      }
      fail("Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      ++i;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      i += 2;
      continue;
    }
    // A replacement field, possibly with nested fields in its format spec.
    size_t j = i + 1;
    int depth = 1;
    while (j < format.size() && depth > 0) {
      if (format[j] == '{') ++depth;
      if (format[j] == '}') --depth;
      if (depth > 0) ++j;
    }
    if (j >= format.size()) fail("expected '}' before end of string");
    const std::string field = format.substr(i + 1, j - i - 1);
    i = j + 1;
    size_t name_end = 0;
    int brackets = 0;
    while (name_end < field.size()) {
      if (field[name_end] == '[') ++brackets;
      if (field[name_end] == ']') --brackets;
      if (brackets == 0 && (field[name_end] == '!' || field[name_end] == ':')) break;
      ++name_end;
    }
    Value value = lookup(field.substr(0, name_end));
    std::string spec;
    if (name_end < field.size() && field[name_end] == '!') {
      if (name_end + 1 >= field.size()) fail("end of string while looking for conversion specifier");
      const char conversion = field[name_end + 1];
      if (conversion == 'r') {
        value = Value::string(repr(value));
      } else if (conversion == 'a') {
        value = Value::string(ascii_escape(repr(value)));
      } else if (conversion == 's') {
        value = Value::string(to_str(value));
      } else {
        fail(std::string("Unknown conversion specifier ") + conversion);
      }
      name_end += 2;
      if (name_end < field.size() && field[name_end] != ':') fail("expected ':' after conversion specifier");
    }
    if (name_end < field.size()) {
      spec = field.substr(name_end + 1);
      if (spec.find('{') != std::string::npos) spec = brace_format(interp, spec, args);
    }
    out += format_value(interp, value, spec);
    interp.check_string_size(out.size());
  }
  return out;
}

}  // namespace nnterp::chat::jinja_detail
