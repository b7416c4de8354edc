#include "tokenizer/tok_common.hpp"

#include <utf8proc.h>

namespace nnterp::tok {

// ---------------------------------------------------------------------------------------------
// UTF-8

namespace {
// Length of the valid sequence at s[i] (0 when invalid); *bad gets the length of the maximal
// invalid subpart (the lead byte plus the continuation bytes that were still acceptable).
inline size_t tok_utf8_check_at(const unsigned char* s, size_t n, size_t i, size_t* bad) {
  const unsigned char c = s[i];
  if (c < 0x80) return 1;
  unsigned char lo = 0x80, hi = 0xBF;
  size_t need;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c == 0xE0) {
    need = 2;
    lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    need = 2;
  } else if (c == 0xED) {
    need = 2;
    hi = 0x9F;
  } else if (c == 0xF0) {
    need = 3;
    lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    need = 3;
  } else if (c == 0xF4) {
    need = 3;
    hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= n) {
      *bad = k;
      return 0;
    }
    const unsigned char b = s[i + k];
    const unsigned char l = (k == 1) ? lo : 0x80, h = (k == 1) ? hi : 0xBF;
    if (b < l || b > h) {
      *bad = k;
      return 0;
    }
  }
  return need + 1;
}
}  // namespace

size_t utf8_valid_prefix(std::string_view s) {
  const auto* u = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    // Fast path over ASCII, 8 bytes at a time.
    while (i + 8 <= n) {
      uint64_t w;
      std::memcpy(&w, u + i, 8);
      if (w & 0x8080808080808080ull) break;
      i += 8;
    }
    if (i >= n) break;
    size_t bad = 0;
    const size_t len = tok_utf8_check_at(u, n, i, &bad);
    if (len == 0) return i;
    i += len;
  }
  return n;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  size_t i = 0;
  while (i < n) {
    size_t bad = 0;
    const size_t len = tok_utf8_check_at(u, n, i, &bad);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      i += bad;
    } else {
      out.append(bytes.data() + i, len);
      i += len;
    }
  }
  return out;
}

void utf8_to_codepoints(std::string_view s, std::vector<uint32_t>& out) {
  out.clear();
  size_t i = 0;
  while (i < s.size()) {
    int len;
    out.push_back(utf8_decode_at(s.data() + i, &len));
    i += static_cast<size_t>(len);
  }
}

// ---------------------------------------------------------------------------------------------
// Unicode predicates

bool uc_is_whitespace(uint32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  if (cp < 0x85) return false;
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

static inline utf8proc_category_t tok_category(uint32_t cp) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(cp));
}

bool uc_is_numeric(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto c = tok_category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool uc_is_punctuation(uint32_t cp) {
  const auto c = tok_category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

bool uc_is_ascii_punctuation(uint32_t cp) {
  return (cp >= 0x21 && cp <= 0x2F) || (cp >= 0x3A && cp <= 0x40) || (cp >= 0x5B && cp <= 0x60) ||
         (cp >= 0x7B && cp <= 0x7E);
}

bool uc_is_combining_mark(uint32_t cp) {
  const auto c = tok_category(cp);
  return c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC || c == UTF8PROC_CATEGORY_ME;
}

bool uc_is_mark_nonspacing(uint32_t cp) { return tok_category(cp) == UTF8PROC_CATEGORY_MN; }

bool uc_is_other(uint32_t cp) {
  const auto c = tok_category(cp);
  return c == UTF8PROC_CATEGORY_CN || c >= UTF8PROC_CATEGORY_CC;
}

bool uc_is_word(uint32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  if (cp == 0x200C || cp == 0x200D) return true;
  const auto c = tok_category(cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_ME) || c == UTF8PROC_CATEGORY_ND ||
         c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_PC;
}

void uc_append_lower(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
    return;
  }
  if (cp == 0x130) {  // the one code point whose full lower-case mapping has two code points
    out += "i\xCC\x87";
    return;
  }
  utf8_append(out, static_cast<uint32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
}

// ---------------------------------------------------------------------------------------------
// StrIdMap

void StrIdMap::reserve(size_t n) {
  entries_.reserve(n);
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap > table_.size()) {
    table_.assign(cap, 0);
    for (size_t e = 0; e < entries_.size(); ++e) {
      size_t i = entries_[e].hash & (cap - 1);
      while (table_[i] != 0) i = (i + 1) & (cap - 1);
      table_[i] = static_cast<uint32_t>(e + 1);
    }
  }
}

void StrIdMap::grow() { reserve(table_.empty() ? 8 : table_.size()); }

void StrIdMap::insert(std::string_view key, uint32_t id) {
  if ((count_ + 1) * 2 > table_.size()) grow();
  const uint64_t h = tok_hash_bytes(key.data(), key.size());
  const size_t mask = table_.size() - 1;
  size_t i = h & mask;
  while (table_[i] != 0) {
    Entry& e = entries_[table_[i] - 1];
    if (e.hash == h && e.len == key.size() && std::memcmp(arena_.data() + e.off, key.data(), key.size()) == 0) {
      e.id = id;
      return;
    }
    i = (i + 1) & mask;
  }
  entries_.push_back(Entry{h, static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), id});
  arena_.append(key.data(), key.size());
  table_[i] = static_cast<uint32_t>(entries_.size());
  ++count_;
}

int64_t StrIdMap::find(std::string_view key) const {
  if (table_.empty()) return -1;
  const uint64_t h = tok_hash_bytes(key.data(), key.size());
  const size_t mask = table_.size() - 1;
  size_t i = h & mask;
  while (true) {
    const uint32_t t = table_[i];
    if (t == 0) return -1;
    const Entry& e = entries_[t - 1];
    if (e.hash == h && e.len == key.size() &&
        (key.empty() || std::memcmp(arena_.data() + e.off, key.data(), key.size()) == 0)) {
      return e.id;
    }
    i = (i + 1) & mask;
  }
}

// ---------------------------------------------------------------------------------------------
// PairMap

void PairMap::rehash(size_t capacity) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(capacity, Slot{kEmpty, 0, 0});
  mask_ = capacity - 1;
  shift_ = 64;
  for (size_t c = capacity; c > 1; c >>= 1) --shift_;
  for (const Slot& s : old) {
    if (s.key == kEmpty) continue;
    size_t j = slot(s.key);
    while (slots_[j].key != kEmpty) j = (j + 1) & mask_;
    slots_[j] = s;
  }
}

void PairMap::reserve(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  if (cap > slots_.size()) rehash(cap);
}

void PairMap::insert(uint32_t a, uint32_t b, uint32_t rank, uint32_t new_id) {
  if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  const uint64_t key = (uint64_t{a} << 32) | b;
  size_t i = slot(key);
  while (slots_[i].key != kEmpty) {
    if (slots_[i].key == key) {
      slots_[i].rank = rank;
      slots_[i].new_id = new_id;
      return;
    }
    i = (i + 1) & mask_;
  }
  slots_[i] = Slot{key, rank, new_id};
  ++count_;
}

}  // namespace nnterp::tok
