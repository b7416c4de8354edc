// Internal building blocks of the tokenizer (no torch, no public API): UTF-8 helpers, the Unicode
// predicates the HuggingFace components use, and two compact hash maps.
//
// The library is built as a unity build: every entity here lives in nnterp::tok and has a name
// that is unique across the tokenizer sources.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nnterp/error.hpp"

namespace nnterp::tok {

// ---------------------------------------------------------------------------------------------
// UTF-8

// Byte length of the UTF-8 sequence starting with `lead` (input known to be valid).
inline int utf8_seq_len(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Decodes the code point at `p` (valid UTF-8); stores its byte length in *len.
inline uint32_t utf8_decode_at(const char* p, int* len) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  if (u[0] < 0x80) { *len = 1; return u[0]; }
  if (u[0] < 0xE0) { *len = 2; return ((u[0] & 0x1Fu) << 6) | (u[1] & 0x3Fu); }
  if (u[0] < 0xF0) {
    *len = 3;
    return ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
  }
  *len = 4;
  return ((u[0] & 0x07u) << 18) | ((u[1] & 0x3Fu) << 12) | ((u[2] & 0x3Fu) << 6) | (u[3] & 0x3Fu);
}

inline void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Length of the valid UTF-8 prefix of `s` (s.size() when all of it is valid).
size_t utf8_valid_prefix(std::string_view s);

// Rust's String::from_utf8_lossy: every maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Decodes valid UTF-8 into code points.
void utf8_to_codepoints(std::string_view s, std::vector<uint32_t>& out);

// ---------------------------------------------------------------------------------------------
// Unicode predicates (as Rust's char methods / the crates tokenizers uses define them)

bool uc_is_whitespace(uint32_t cp);       // char::is_whitespace (White_Space property)
bool uc_is_numeric(uint32_t cp);          // char::is_numeric (Nd, Nl, No)
bool uc_is_punctuation(uint32_t cp);      // unicode_categories is_punctuation (P*)
bool uc_is_ascii_punctuation(uint32_t cp);
bool uc_is_combining_mark(uint32_t cp);   // Mn, Mc, Me
bool uc_is_mark_nonspacing(uint32_t cp);  // Mn
bool uc_is_other(uint32_t cp);            // C* (Cc, Cf, Cs, Co, Cn)
bool uc_is_word(uint32_t cp);             // regex \w (alphabetic, marks, Nd, Pc, join controls)
// Lower-cases one code point with Rust's char::to_lowercase (full mapping).
void uc_append_lower(std::string& out, uint32_t cp);

// ---------------------------------------------------------------------------------------------
// Hashing and maps

inline uint64_t tok_hash_bytes(const char* data, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xC2B2AE3D27D4EB4Full);
  const auto mix = [](uint64_t x) {
    x ^= x >> 31;
    x *= 0x7FB5D329728EA185ull;
    x ^= x >> 27;
    x *= 0x81DADEF4BC2DD44Dull;
    x ^= x >> 33;
    return x;
  };
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, data, 8);
    h = mix(h ^ w) + 0x165667B19E3779F9ull;
    data += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, data, n);
    h = mix(h ^ w ^ (uint64_t{n} << 56));
  }
  return mix(h);
}

// String -> id, open addressing over one arena of key bytes; insertion of an existing key
// overwrites its id (as a Rust HashMap collect does).
class StrIdMap {
 public:
  void reserve(size_t n);
  void insert(std::string_view key, uint32_t id);
  // -1 when absent.
  int64_t find(std::string_view key) const;
  size_t size() const { return count_; }

 private:
  struct Entry {
    uint64_t hash;
    uint32_t off, len;
    uint32_t id;
  };
  void grow();
  std::string arena_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> table_;  // entry index + 1, 0 = empty
  size_t count_ = 0;
};

// (left id, right id) -> (rank, new id), for BPE merges. Key and value share one 16-byte slot, so
// a lookup touches one cache line (the tables of large vocabularies do not fit in cache).
class PairMap {
 public:
  void reserve(size_t n);
  void insert(uint32_t a, uint32_t b, uint32_t rank, uint32_t new_id);
  // false when absent
  bool find(uint32_t a, uint32_t b, uint32_t* rank, uint32_t* new_id) const {
    if (slots_.empty()) return false;
    const uint64_t key = (uint64_t{a} << 32) | b;
    size_t i = slot(key);
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        *rank = s.rank;
        *new_id = s.new_id;
        return true;
      }
      if (s.key == kEmpty) return false;
      i = (i + 1) & mask_;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Slot {
    uint64_t key;
    uint32_t rank, new_id;
  };
  size_t slot(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_) & mask_; }
  void rehash(size_t capacity);
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 0;
  size_t count_ = 0;
};

// Formats a byte as the byte-fallback token "<0xAB>".
inline void tok_byte_token(unsigned char b, char out[7]) {
  static const char* hex = "0123456789ABCDEF";
  out[0] = '<';
  out[1] = '0';
  out[2] = 'x';
  out[3] = hex[b >> 4];
  out[4] = hex[b & 15];
  out[5] = '>';
  out[6] = 0;
}

}  // namespace nnterp::tok
