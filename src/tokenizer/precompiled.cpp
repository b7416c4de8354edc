#include "tokenizer/precompiled.hpp"

#include <utf8proc.h>

#include <cstring>

#include "tokenizer/tok_common.hpp"

namespace nnterp::tok {

std::string tok_base64_decode(std::string_view in, const std::string& subject) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  size_t i = 0;
  for (; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '=') break;
    const int v = value(c);
    if (v < 0) throw Error(ErrorKind::Format, subject, "invalid base64 in precompiled_charsmap");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  for (; i < in.size(); ++i) {
    if (in[i] != '=') throw Error(ErrorKind::Format, subject, "invalid base64 padding in precompiled_charsmap");
  }
  return out;
}

PrecompiledCharsMap::PrecompiledCharsMap(std::string_view blob, const std::string& subject) {
  if (blob.size() < 4) throw Error(ErrorKind::Format, subject, "precompiled_charsmap is too short");
  uint32_t trie_size;
  std::memcpy(&trie_size, blob.data(), 4);  // little-endian, as every supported host
  const size_t units = trie_size / 4;
  if (blob.size() < 4 + size_t{units} * 4) {
    throw Error(ErrorKind::Format, subject, "precompiled_charsmap trie size exceeds its data");
  }
  array_.resize(units);
  if (units) std::memcpy(array_.data(), blob.data() + 4, units * 4);
  normalized_.assign(blob.substr(4 + units * 4));
  if (utf8_valid_prefix(normalized_) != normalized_.size()) {
    throw Error(ErrorKind::Format, subject, "precompiled_charsmap replacement strings are not valid UTF-8");
  }
  if (array_.empty()) throw Error(ErrorKind::Format, subject, "precompiled_charsmap has an empty trie");
}

std::optional<std::string_view> PrecompiledCharsMap::transform(std::string_view chunk) const {
  const auto offset = [](uint32_t unit) -> size_t {
    return static_cast<size_t>(unit >> 10) << ((unit & (1u << 9)) >> 6);
  };
  const auto label = [](uint32_t unit) -> uint32_t { return unit & ((1u << 31) | 0xFFu); };
  const size_t n = array_.size();
  size_t node = 0;
  uint32_t unit = array_[0];
  node ^= offset(unit);
  for (char ch : chunk) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == 0) break;
    node ^= c;
    if (node >= n) return std::nullopt;
    unit = array_[node];
    if (label(unit) != c) return std::nullopt;
    node ^= offset(unit);
    if ((unit >> 8) & 1u) {
      if (node >= n) return std::nullopt;
      const size_t index = array_[node] & ((1u << 31) - 1);
      if (index > normalized_.size()) return std::nullopt;
      size_t end = index;
      while (end < normalized_.size() && normalized_[end] != 0) ++end;
      return std::string_view(normalized_).substr(index, end - index);
    }
  }
  return std::nullopt;
}

void PrecompiledCharsMap::normalize(std::string& s) const {
  std::string out;
  out.reserve(s.size());
  bool modified = false;
  const size_t n = s.size();
  size_t i = 0;
  utf8proc_int32_t state = 0;
  while (i < n) {
    // One extended grapheme cluster [i, j).
    int len;
    uint32_t prev = utf8_decode_at(s.data() + i, &len);
    size_t j = i + static_cast<size_t>(len);
    state = 0;
    while (j < n) {
      const uint32_t cp = utf8_decode_at(s.data() + j, &len);
      if (utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                           static_cast<utf8proc_int32_t>(cp), &state)) {
        break;
      }
      prev = cp;
      j += static_cast<size_t>(len);
    }
    const std::string_view grapheme(s.data() + i, j - i);
    bool done = false;
    if (grapheme.size() < 6) {
      if (auto norm = transform(grapheme)) {
        out.append(norm->data(), norm->size());
        modified = true;
        done = true;
      }
    }
    if (!done) {
      size_t k = 0;
      while (k < grapheme.size()) {
        const int cl = utf8_seq_len(static_cast<unsigned char>(grapheme[k]));
        const std::string_view part = grapheme.substr(k, static_cast<size_t>(cl));
        if (auto norm = transform(part)) {
          out.append(norm->data(), norm->size());
          modified = true;
        } else {
          out.append(part.data(), part.size());
        }
        k += static_cast<size_t>(cl);
      }
    }
    i = j;
  }
  if (modified) s.swap(out);
}

}  // namespace nnterp::tok
