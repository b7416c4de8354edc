// Text helpers for the Jinja interpreter: UTF-8 decoding, the Unicode character classes that
// Python's str methods and `re` use, and Python's number formatting (float repr).
//
// Strings are kept as UTF-8.  Python strings are sequences of code points, so every operation
// that counts or indexes characters decodes to UTF-32 first.  Bytes that are not valid UTF-8
// decode to U+DC80..U+DCFF (Python's surrogateescape) and encode back to the same byte.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace nnterp::chat::jinja_detail {

// Decodes the code point at s[pos] and advances pos past it.
char32_t decode_utf8(std::string_view s, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
std::u32string to_u32(std::string_view s);
std::string to_utf8(std::u32string_view s);
size_t count_code_points(std::string_view s);

// Python's str.isspace() / `\s`: the characters str.strip() and str.split() remove.
bool is_space(char32_t c);
// Byte length of the whitespace character at s[pos], or 0 if there is none.
size_t space_length_at(std::string_view s, size_t pos);
std::string_view strip_spaces_right(std::string_view s);

// Case mapping (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic, full-width Latin).
char32_t to_upper(char32_t c);
char32_t to_lower(char32_t c);
bool is_upper(char32_t c);
bool is_lower(char32_t c);
bool is_cased(char32_t c);
// Approximations of Python's Unicode categories for str.isalpha() and friends.
bool is_alpha(char32_t c);
bool is_digit(char32_t c);
bool is_word_char(char32_t c);  // `\w`: alphanumeric or underscore
// Python's str.isprintable() for one character (decides repr's escapes).
bool is_printable(char32_t c);
// Characters at which str.splitlines() breaks.
bool is_line_break(char32_t c);
// Appends repr's escape for `c`: \xhh up to U+00FF, \uhhhh up to U+FFFF, \Uhhhhhhhh beyond.
void append_hex_escape(std::string& out, char32_t c);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);

// float.__repr__: the shortest text that reads back as `x` ("1.0", "1e+16", "inf").
std::string repr_float(double x);
std::string repr_int(int64_t x);

}  // namespace nnterp::chat::jinja_detail
