// Python's str methods and formatting on UTF-8 text (indices and lengths in code points),
// shared by the str methods templates call and by jinja2's filters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/jinja_value.hpp"

namespace nnterp::chat::jinja_detail {

// str.strip / lstrip / rstrip; `chars` absent: whitespace.
std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split / rsplit; `sep` absent: runs of whitespace.  maxsplit < 0: no limit.
std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit);
std::vector<std::string> py_splitlines(std::string_view s, bool keepends);
// str.replace; fails with a limit error if the result would exceed max_bytes.
std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       size_t max_bytes);
std::string py_capitalize(std::string_view s);
std::string py_title(std::string_view s);     // str.title()
std::string py_swapcase(std::string_view s);
std::string py_pad(std::string_view s, int64_t width, char32_t fill, char align);  // '<' '>' '^'
std::string py_center(std::string_view s, int64_t width, char32_t fill);          // str.center's split
// str.find / rfind / count over s[start:end] (Python slice bounds, in code points).
int64_t py_find(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end,
                bool reverse);
int64_t py_count(std::string_view s, std::string_view sub, std::optional<int64_t> start, std::optional<int64_t> end);
bool py_affix(std::string_view s, std::string_view affix, std::optional<int64_t> start, std::optional<int64_t> end,
              bool suffix);

// int(str, base) and float(str) as Python parses them; nullopt where Python raises ValueError.
std::optional<int64_t> parse_py_int(std::string_view s, int base);
std::optional<double> parse_py_float(std::string_view s);

// `format % args` (printf-style); `args` is a tuple, a dict or a single value.  With
// `escape_args` (a Markup format), %s / %r text of non-Markup arguments is HTML-escaped.
std::string percent_format(Interpreter& interp, const std::string& format, const Value& args, bool escape_args = false);
// str.format(*args, **kwargs)
std::string brace_format(Interpreter& interp, const std::string& format, const CallArgs& args);

}  // namespace nnterp::chat::jinja_detail
