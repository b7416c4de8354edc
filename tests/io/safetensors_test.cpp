// safetensors reading: every kind of corruption gives a clear nnterp::Error (never a crash), the
// edge cases the format allows are accepted, F16/BF16 convert exactly, F32 is zero-copy, and
// save → open round-trips every dtype.
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "io/io_helpers.hpp"
#include "nnterp/safetensors.hpp"

using namespace io_test;
using nnterp::ErrorKind;
using nnterp::io::DType;
using nnterp::io::SafetensorsFile;
using nnterp::io::WeightStore;
using nnterp::io::save_safetensors;

namespace {

// Checks that `bytes` is rejected the same way from disk (SafetensorsFile::open) and from memory
// (parse_buffer), with an error of `kind` naming the file and containing every `parts`.
std::string expect_rejected(const std::vector<uint8_t>& bytes, ErrorKind kind,
                            std::initializer_list<std::string> parts) {
  TempDir dir;
  fs::path path = dir / "bad.safetensors";
  write_bytes(path, bytes);
  std::vector<std::string> with_path(parts);
  with_path.push_back(path.string());
  std::string text = expect_error([&] { SafetensorsFile::open(path); }, kind, {});
  for (const auto& part : with_path) EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
  std::string from_memory = expect_error([&] { SafetensorsFile::parse_buffer(bytes, "in-memory.safetensors"); }, kind,
                                         {"in-memory.safetensors"});
  for (const auto& part : parts)
    EXPECT_NE(from_memory.find(part), std::string::npos) << "'" << part << "' not in: " << from_memory;
  return text;
}

const std::string kTwoByTwo = R"("dtype":"F32","shape":[2,2])";

}  // namespace

// ---- corruption ------------------------------------------------------------------------------

TEST(SafetensorsCorrupt, EmptyAndShortFiles) {
  expect_rejected({}, ErrorKind::Format, {"the file is 0 bytes, too short for the 8-byte header length", "truncated"});
  expect_rejected({1, 0, 0, 0, 0}, ErrorKind::Format, {"the file is 5 bytes, too short"});
}

TEST(SafetensorsCorrupt, ExactlyEightBytesWithZeroHeader) {
  expect_rejected(raw_safetensors(""), ErrorKind::Format, {"the header is empty (length 0)"});
}

TEST(SafetensorsCorrupt, ExactlyEightBytesWithNonZeroHeaderLength) {
  expect_rejected(raw_safetensors("", {}, 100), ErrorKind::Format,
                  {"the header length 100 runs past the end of the file (8 bytes)", "hint: the file is truncated"});
}

TEST(SafetensorsCorrupt, HeaderLengthPastEndOfFile) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[0,16]}})";
  auto bytes = raw_safetensors(header, iota_bytes(16), header.size() + 17);
  expect_rejected(bytes, ErrorKind::Format,
                  {"the header length " + std::to_string(header.size() + 17) + " runs past the end of the file (" +
                   std::to_string(bytes.size()) + " bytes)"});
}

TEST(SafetensorsCorrupt, HugeHeaderLength) {
  expect_rejected(raw_safetensors("{}", {}, 1ull << 63), ErrorKind::Format,
                  {"the header length 9223372036854775808 exceeds the 100 MiB limit"});
  expect_rejected(raw_safetensors("{}", {}, std::numeric_limits<uint64_t>::max()), ErrorKind::Format,
                  {"exceeds the 100 MiB limit"});
}

TEST(SafetensorsCorrupt, TruncatedInsideTheHeader) {
  TempDir dir;
  save_safetensors(dir / "ok.safetensors", {{"w", torch::ones({4, 4})}});
  auto bytes = read_bytes(dir / "ok.safetensors");
  bytes.resize(20);
  expect_rejected(bytes, ErrorKind::Format, {"runs past the end of the file (20 bytes)", "truncated"});
}

TEST(SafetensorsCorrupt, TruncatedInsideTheData) {
  TempDir dir;
  save_safetensors(dir / "ok.safetensors", {{"a", torch::ones({2})}, {"b", torch::ones({4, 4})}});
  auto bytes = read_bytes(dir / "ok.safetensors");
  bytes.resize(bytes.size() - 10);
  expect_rejected(bytes, ErrorKind::Format,
                  {"(tensor 'b')", "data_offsets [8,72] run past the end of the data section (62 bytes)",
                   "hint: the file is truncated or corrupt"});
}

TEST(SafetensorsCorrupt, OffsetsOutOfRange) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[1000,1016]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                  {"(tensor 'a')", "data_offsets [1000,1016] run past the end of the data section (16 bytes)"});
}

TEST(SafetensorsCorrupt, OffsetsReversed) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[16,0]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                  {"(tensor 'a')", "data_offsets [16,0] end before they begin"});
}

TEST(SafetensorsCorrupt, OffsetsNotIntegers) {
  for (std::string offsets : {"[0,16.0]", "[-16,0]", R"(["0",16])", "[0]", "[0,8,16]", "{}", "null"}) {
    std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":)" + offsets + "}}";
    expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format, {"(tensor 'a')", "data_offsets"});
  }
}

TEST(SafetensorsCorrupt, MissingOffsets) {
  std::string header = R"({"a":{)" + kTwoByTwo + "}}";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                  {"(tensor 'a')", "'data_offsets' must be an array [begin, end]"});
}

TEST(SafetensorsCorrupt, OverlappingOffsets) {
  std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(24)), ErrorKind::Format,
                  {"(tensor 'b')", "its data [8, 24) overlaps that of 'a' [0, 16)"});
}

TEST(SafetensorsCorrupt, OverlapHiddenBehindANeighbour) {
  // c lies inside a, after b: only a check against the right neighbour catches it.
  std::string header = R"({"a":{"dtype":"U8","shape":[100],"data_offsets":[0,100]},)"
                       R"("b":{"dtype":"U8","shape":[10],"data_offsets":[10,20]},)"
                       R"("c":{"dtype":"U8","shape":[10],"data_offsets":[50,60]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(100)), ErrorKind::Format, {"overlaps that of 'a'"});
}

TEST(SafetensorsCorrupt, SameOffsetsTwice) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[0,16]},"b":{)" + kTwoByTwo +
                       R"(,"data_offsets":[0,16]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format, {"(tensor 'b')", "overlaps that of 'a'"});
}

TEST(SafetensorsCorrupt, OffsetsDoNotMatchShapeTimesDtype) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[0,12]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                  {"(tensor 'a')", "data_offsets [0,12] hold 12 bytes but shape [2,2] x F32 needs 16"});
  header = R"({"h":{"dtype":"BF16","shape":[3],"data_offsets":[0,3]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                  {"(tensor 'h')", "hold 3 bytes but shape [3] x BF16 needs 6"});
}

TEST(SafetensorsCorrupt, ShapeTimesDtypeWouldWrapIn32Bits) {
  // 65536 x 65536 x 4 bytes = 2^34, which wraps to 0 in 32-bit arithmetic.
  std::string header = R"({"a":{"dtype":"F32","shape":[65536,65536],"data_offsets":[0,0]}})";
  expect_rejected(raw_safetensors(header), ErrorKind::Format,
                  {"(tensor 'a')", "hold 0 bytes but shape [65536,65536] x F32 needs 17179869184"});
}

TEST(SafetensorsCorrupt, ShapeTimesDtypeWouldWrapIn64Bits) {
  // 2^32 x 2^32 x 2^1 elements wraps to 0 in 64 bits.
  std::string header = R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,2],"data_offsets":[0,0]}})";
  expect_rejected(raw_safetensors(header), ErrorKind::Format, {"(tensor 'a')", "shape [4294967296,4294967296,2] is too large"});
}

TEST(SafetensorsCorrupt, HugeDimensionBehindAZero) {
  // numel is 0, but a dimension beyond int64 must not slip through into a negative torch size.
  std::string header = R"({"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}})";
  expect_rejected(raw_safetensors(header), ErrorKind::Format, {"(tensor 'a')", "is too large"});
}

TEST(SafetensorsCorrupt, UnknownDtype) {
  std::string header = R"({"a":{"dtype":"F12","shape":[2],"data_offsets":[0,4]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(4)), ErrorKind::Format,
                  {"(tensor 'a')", "unknown dtype \"F12\"", "hint: supported: F64, F32, F16, BF16"});
  header = R"({"a":{"dtype":3,"shape":[2],"data_offsets":[0,4]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(4)), ErrorKind::Format, {"(tensor 'a')", "missing or non-string 'dtype'"});
  header = R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})";  // names are case-sensitive
  expect_rejected(raw_safetensors(header, iota_bytes(4)), ErrorKind::Format, {"unknown dtype \"f32\""});
}

TEST(SafetensorsCorrupt, ValidButUnsupportedDtype) {
  std::string header = R"({"q":{"dtype":"U32","shape":[1],"data_offsets":[0,4]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(4)), ErrorKind::Unsupported,
                  {"(tensor 'q')", "dtype 'U32' is valid safetensors but not supported by nnterp"});
}

TEST(SafetensorsCorrupt, DuplicateNames) {
  std::string header = R"({"a":{)" + kTwoByTwo + R"(,"data_offsets":[0,16]},"a":{)" + kTwoByTwo +
                       R"(,"data_offsets":[16,32]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(32)), ErrorKind::Format,
                  {"(tensor 'a')", "the tensor name appears twice in the header"});
}

TEST(SafetensorsCorrupt, DuplicateMetadata) {
  std::string header = R"({"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}})";
  expect_rejected(raw_safetensors(header), ErrorKind::Format, {"'__metadata__' appears twice in the header"});
}

TEST(SafetensorsCorrupt, InvalidJson) {
  std::string text = expect_rejected(raw_safetensors(R"({"a": {"dtype": "F32", )"), ErrorKind::Format,
                                     {"the header is not valid JSON", "hint: the file is corrupt or not a safetensors file"});
  std::string bad_utf8 = "{\"\xff\xfe\":{}}";
  expect_rejected(raw_safetensors(bad_utf8), ErrorKind::Format, {"the header is not valid JSON"});
  expect_rejected(raw_safetensors("{} trailing"), ErrorKind::Format, {"the header is not valid JSON"});
  expect_rejected(raw_safetensors(std::string("{}\0{\"a\":1}", 10)), ErrorKind::Format,
                  {"the header holds a NUL byte at offset 10 followed by more text"});
  expect_rejected(raw_safetensors(std::string("{\"a\0\":1}", 9)), ErrorKind::Format,
                  {"the header holds a NUL byte at offset 11"});
  expect_rejected(raw_safetensors(std::string("\0\0\0\0", 4)), ErrorKind::Format, {"the header is not valid JSON"});
  expect_rejected(raw_safetensors(R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})"), ErrorKind::Format,
                  {"the header is not valid JSON"});
}

TEST(SafetensorsCorrupt, HeaderNotAnObject) {
  expect_rejected(raw_safetensors("[1,2,3]"), ErrorKind::Format, {"the header is a JSON array, not an object"});
  expect_rejected(raw_safetensors("\"text\""), ErrorKind::Format, {"the header is a JSON string, not an object"});
  expect_rejected(raw_safetensors("null"), ErrorKind::Format, {"the header is a JSON null, not an object"});
}

TEST(SafetensorsCorrupt, EntryNotAnObject) {
  expect_rejected(raw_safetensors(R"({"a":[1,2]})"), ErrorKind::Format,
                  {"(tensor 'a')", "the header entry is a JSON array, not an object"});
}

TEST(SafetensorsCorrupt, BadShapeEntries) {
  struct Case {
    std::string shape, shown;
  };
  for (const Case& c : {Case{"[-1,4]", "-1"}, Case{"[2.5]", "2.5"}, Case{"[2.0,2]", "2.0"}, Case{R"(["4"])", "\"4\""},
                        Case{"[true]", "true"}, Case{"[null]", "null"}, Case{"[[2]]", "[2]"}}) {
    std::string header = R"({"a":{"dtype":"F32","shape":)" + c.shape + R"(,"data_offsets":[0,16]}})";
    expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format,
                    {"(tensor 'a')", "shape entries must be non-negative integers, got " + c.shown});
  }
  std::string header = R"({"a":{"dtype":"F32","shape":4,"data_offsets":[0,16]}})";
  expect_rejected(raw_safetensors(header, iota_bytes(16)), ErrorKind::Format, {"(tensor 'a')", "missing or non-array 'shape'"});
}

TEST(SafetensorsCorrupt, BadMetadata) {
  expect_rejected(raw_safetensors(R"({"__metadata__":{"format":"pt","step":1}})"), ErrorKind::Format,
                  {"'__metadata__' value for 'step' is a JSON number, not a string"});
  expect_rejected(raw_safetensors(R"({"__metadata__":{"nested":{"a":"b"}}})"), ErrorKind::Format,
                  {"'__metadata__' value for 'nested' is a JSON object, not a string"});
  expect_rejected(raw_safetensors(R"({"__metadata__":["pt"]})"), ErrorKind::Format,
                  {"'__metadata__' is a JSON array, not an object of strings"});
  expect_rejected(raw_safetensors(R"({"__metadata__":"pt"})"), ErrorKind::Format,
                  {"'__metadata__' is a JSON string, not an object of strings"});
}

TEST(SafetensorsCorrupt, ErrorTextNamesFileAndTensor) {
  TempDir dir;
  fs::path path = dir / "model.safetensors";
  write_bytes(path, raw_safetensors(R"({"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}})", iota_bytes(4)));
  try {
    SafetensorsFile::open(path);
    FAIL() << "did not throw";
  } catch (const nnterp::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Format);
    EXPECT_EQ(e.subject(), path.string() + " (tensor 'w')");
    EXPECT_EQ(e.message(), "unknown dtype \"F12\"");
    EXPECT_EQ(std::string(e.what()), "format error in " + path.string() +
                                         " (tensor 'w'): unknown dtype \"F12\"\n  hint: supported: F64, F32, F16, "
                                         "BF16, I64, I32, I16, I8, U8, BOOL");
  }
}

TEST(SafetensorsCorrupt, NotAFile) {
  TempDir dir;
  expect_error([&] { SafetensorsFile::open(dir / "missing.safetensors"); }, ErrorKind::Io,
               {(dir / "missing.safetensors").string(), "cannot open: No such file or directory"});
  expect_error([&] { SafetensorsFile::open(dir.path()); }, ErrorKind::Io, {dir.path().string(), "not a regular file"});
}

// Every truncation and many single-byte corruptions of a valid file: either a clean parse or an
// nnterp::Error, never another exception or a crash; whatever parses can be read.
TEST(SafetensorsCorrupt, MutationsNeverCrash) {
  TempDir dir;
  save_safetensors(dir / "ok.safetensors",
                   {{"a", torch::arange(6, torch::kFloat32).reshape({2, 3})},
                    {"b", torch::arange(4, torch::kInt64)},
                    {"c", torch::ones({3}, torch::kBFloat16)},
                    {"e", torch::empty({0, 2}, torch::kFloat16)}},
                   {{"format", "pt"}});
  const auto good = read_bytes(dir / "ok.safetensors");
  int parsed = 0, rejected = 0;
  auto attempt = [&](std::vector<uint8_t> bytes) {
    try {
      auto file = SafetensorsFile::parse_buffer(std::move(bytes), "mutant");
      for (const auto& t : file->tensors()) {
        auto x = file->tensor(t.name);
        EXPECT_EQ(static_cast<uint64_t>(x.nbytes()), t.end - t.begin);
        if (x.numel() > 0) (void)x.sum().item<double>();
      }
      ++parsed;
    } catch (const nnterp::Error&) {
      ++rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "non-nnterp exception: " << e.what();
    }
  };
  for (size_t n = 0; n < good.size(); ++n) attempt(std::vector<uint8_t>(good.begin(), good.begin() + n));
  for (size_t i = 0; i < good.size(); ++i)
    for (uint8_t value : {uint8_t(0), uint8_t(0xff), uint8_t('"'), uint8_t('9'), uint8_t(good[i] ^ 1)}) {
      auto bytes = good;
      bytes[i] = value;
      attempt(std::move(bytes));
    }
  EXPECT_GT(parsed, 0);
  EXPECT_GT(rejected, static_cast<int>(good.size()));
}

// ---- what the format allows ----------------------------------------------------------------

TEST(SafetensorsValid, EmptyHeaderObject) {
  auto file = SafetensorsFile::parse_buffer(raw_safetensors("{}"), "empty");
  EXPECT_TRUE(file->tensors().empty());
  EXPECT_TRUE(file->metadata().empty());
  auto padded = SafetensorsFile::parse_buffer(raw_safetensors("{}      "), "padded");
  EXPECT_TRUE(padded->tensors().empty());
  // Some writers pad with NUL bytes instead of spaces.
  auto nul_padded = SafetensorsFile::parse_buffer(
      raw_safetensors(std::string(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})") + std::string("\0\0 \0", 4),
                      {7, 9}),
      "nul-padded");
  EXPECT_TRUE(torch::equal(nul_padded->tensor("a"), torch::tensor({7, 9}, torch::kUInt8)));
}

TEST(SafetensorsValid, ZeroSizeTensorsAnywhere) {
  // Empty tensors occupy no bytes: they may sit at the same offset as, or inside, another tensor.
  std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("e1":{"dtype":"F32","shape":[0,3],"data_offsets":[8,8]},)"
                       R"("e2":{"dtype":"I64","shape":[0],"data_offsets":[0,0]},)"
                       R"("e3":{"dtype":"BF16","shape":[5,0],"data_offsets":[16,16]}})";
  auto file = SafetensorsFile::parse_buffer(raw_safetensors(header, iota_bytes(16)), "zero");
  ASSERT_EQ(file->tensors().size(), 4u);
  auto e1 = file->tensor("e1");
  EXPECT_EQ(e1.sizes(), torch::IntArrayRef({0, 3}));
  EXPECT_EQ(e1.scalar_type(), torch::kFloat32);
  EXPECT_EQ(file->tensor("e3").sizes(), torch::IntArrayRef({5, 0}));
  EXPECT_EQ(file->tensor("e3").scalar_type(), torch::kBFloat16);
}

TEST(SafetensorsValid, ScalarTensor) {
  float value = 3.5f;
  std::vector<uint8_t> data(4);
  std::memcpy(data.data(), &value, 4);
  auto file = SafetensorsFile::parse_buffer(
      raw_safetensors(R"({"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}})", data), "scalar");
  auto s = file->tensor("s");
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item<float>(), 3.5f);
}

TEST(SafetensorsValid, TrailingBytesAndGapsAreAllowed) {
  std::vector<float> values = {1, 2, 3, 4};
  std::vector<uint8_t> data(40, 0xAB);  // 8 bytes of gap, 16 of tensor, 16 of trailing garbage
  std::memcpy(data.data() + 8, values.data(), 16);
  auto file = SafetensorsFile::parse_buffer(
      raw_safetensors(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})", data), "trailing");
  EXPECT_EQ(file->data_size(), 40u);
  EXPECT_TRUE(torch::equal(file->tensor("a"), torch::tensor({1.f, 2.f, 3.f, 4.f})));
}

TEST(SafetensorsValid, UnalignedDataIsCopied) {
  // A header length that is not a multiple of 8 leaves the data unaligned: the reader copies.
  std::vector<double> values = {1.25, -2.5, 1e300};
  std::vector<uint8_t> data(1 + 24);
  std::memcpy(data.data() + 1, values.data(), 24);
  for (int pad = 0; pad < 8; ++pad) {
    std::string header = R"({"d":{"dtype":"F64","shape":[3],"data_offsets":[1,25]}})" + std::string(pad, ' ');
    auto file = SafetensorsFile::parse_buffer(raw_safetensors(header, data), "unaligned");
    auto d = file->tensor("d");
    EXPECT_TRUE(torch::equal(d, torch::tensor(values, torch::kFloat64))) << "pad " << pad;
  }
}

TEST(SafetensorsValid, MetadataAndNullMetadata) {
  auto file = SafetensorsFile::parse_buffer(raw_safetensors(R"({"__metadata__":{"format":"pt","x":""}})"), "m");
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"x", ""}}));
  auto null_meta = SafetensorsFile::parse_buffer(raw_safetensors(R"({"__metadata__":null})"), "n");
  EXPECT_TRUE(null_meta->metadata().empty());
}

TEST(SafetensorsValid, MissingTensorLookup) {
  auto file = SafetensorsFile::parse_buffer(raw_safetensors("{}"), "nothing.safetensors");
  EXPECT_FALSE(file->contains("w"));
  expect_error([&] { file->tensor("w"); }, ErrorKind::MissingWeight, {"nothing.safetensors", "no tensor named 'w'"});
}

// ---- conversion, zero-copy, round trip -----------------------------------------------------

namespace {

std::vector<uint8_t> u16_bytes(const std::vector<uint16_t>& bits) {
  std::vector<uint8_t> out;
  for (uint16_t b : bits) {
    out.push_back(static_cast<uint8_t>(b & 0xff));
    out.push_back(static_cast<uint8_t>(b >> 8));
  }
  return out;
}

std::string u16_header(const char* dtype, size_t n) {
  return std::string(R"({"w":{"dtype":")") + dtype + R"(","shape":[)" + std::to_string(n) +
         R"(],"data_offsets":[0,)" + std::to_string(2 * n) + "]}}";
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

}  // namespace

TEST(SafetensorsConvert, F16ToFloat32Exactly) {
  const std::vector<uint16_t> bits = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x0400, 0x7C00, 0xFC00, 0x8000, 0x0000};
  const std::vector<float> expected = {1.0f,  -2.0f, 0.333251953125f, 65504.0f, std::ldexp(1.0f, -24),
                                       std::ldexp(1.0f, -14), INFINITY, -INFINITY, -0.0f, 0.0f};
  TempDir dir;
  write_bytes(dir / "model.safetensors", raw_safetensors(u16_header("F16", bits.size()), u16_bytes(bits)));
  auto store = WeightStore::open(dir.path());
  EXPECT_EQ(store.info("w").dtype, DType::F16);
  auto w = store.get("w");
  ASSERT_EQ(w.scalar_type(), torch::kFloat32);
  ASSERT_EQ(w.numel(), static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i)
    EXPECT_EQ(float_bits(w[i].item<float>()), float_bits(expected[i])) << "element " << i << " bits " << std::hex << bits[i];
  auto nan = SafetensorsFile::parse_buffer(raw_safetensors(u16_header("F16", 1), u16_bytes({0x7E00})), "nan");
  EXPECT_TRUE(std::isnan(nan->tensor("w").to(torch::kFloat32).item<float>()));
}

TEST(SafetensorsConvert, BF16ToFloat32Exactly) {
  const std::vector<uint16_t> bits = {0x3F80, 0xC040, 0x3EAB, 0x7F7F, 0x0001, 0xFF80, 0x8000, 0x4049};
  const std::vector<float> expected = {1.0f,  -3.0f, 0.333984375f, std::ldexp(255.0f, 120), std::ldexp(1.0f, -133),
                                       -INFINITY, -0.0f, 3.140625f};
  TempDir dir;
  write_bytes(dir / "model.safetensors", raw_safetensors(u16_header("BF16", bits.size()), u16_bytes(bits)));
  auto store = WeightStore::open(dir.path());
  auto w = store.get("w");
  ASSERT_EQ(w.scalar_type(), torch::kFloat32);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(float_bits(w[i].item<float>()), float_bits(expected[i])) << "element " << i;
    EXPECT_EQ(float_bits(w[i].item<float>()), static_cast<uint32_t>(bits[i]) << 16) << "element " << i;
  }
  // Asking for the stored dtype gives the stored bits unchanged.
  auto raw = store.get("w", torch::kBFloat16);
  EXPECT_EQ(raw.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(raw.to(torch::kFloat32), w));
}

TEST(SafetensorsZeroCopy, F32IsAViewOfTheMapping) {
  TempDir dir;
  auto original = torch::randn({8, 16});
  save_safetensors(dir / "model.safetensors", {{"w", original}, {"b", torch::randn({16})}});
  auto store = WeightStore::open(dir.path());
  auto a = store.get("w");
  auto b = store.get("w");
  EXPECT_EQ(a.data_ptr(), b.data_ptr());
  EXPECT_EQ(store.files()[0]->tensor("w").data_ptr(), a.data_ptr());
  EXPECT_TRUE(torch::equal(a, original));
  // A conversion is a copy.
  auto d = store.get("w", torch::kFloat64);
  EXPECT_NE(d.data_ptr(), a.data_ptr());
  EXPECT_TRUE(torch::equal(d, original.to(torch::kFloat64)));
}

TEST(SafetensorsZeroCopy, InPlaceEditsNeverReachTheFile) {
  TempDir dir;
  fs::path path = dir / "model.safetensors";
  auto original = torch::arange(32, torch::kFloat32).reshape({4, 8});
  save_safetensors(path, {{"w", original}});
  const auto on_disk = read_bytes(path);
  {
    auto store = WeightStore::open(dir.path());
    auto w = store.get("w");
    w.mul_(-3).add_(1);
    w[0][0] = 1234.5f;
    EXPECT_EQ(store.get("w")[0][0].item<float>(), 1234.5f);  // the same (private) mapping
  }
  EXPECT_EQ(read_bytes(path), on_disk);
  auto reopened = WeightStore::open(dir.path());
  EXPECT_TRUE(torch::equal(reopened.get("w"), original));
}

TEST(SafetensorsZeroCopy, TensorKeepsTheFileAlive) {
  TempDir dir;
  auto original = torch::randn({64});
  save_safetensors(dir / "model.safetensors", {{"w", original}});
  torch::Tensor w;
  {
    auto store = WeightStore::open(dir.path());
    w = store.get("w");
  }
  EXPECT_TRUE(torch::equal(w, original));  // the mapping outlives the store
}

TEST(SafetensorsRoundTrip, EveryDtype) {
  TempDir dir;
  fs::path path = dir / "all.safetensors";
  torch::manual_seed(0);
  auto f = torch::randn({3, 5});
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f64", f.to(torch::kFloat64) * 1e200},
      {"f32", f},
      {"f16", f.to(torch::kFloat16)},
      {"bf16", f.to(torch::kBFloat16)},
      {"i64", torch::tensor({std::numeric_limits<int64_t>::min(), int64_t(0), std::numeric_limits<int64_t>::max()})},
      {"i32", torch::tensor({-7, 0, 2147483647}, torch::kInt32)},
      {"i16", torch::tensor({-32768, 0, 32767}, torch::kInt16)},
      {"i8", torch::tensor({-128, 0, 127}, torch::kInt8)},
      {"u8", torch::tensor({0, 1, 255}, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"transposed", f.t()},                       // not contiguous
      {"empty", torch::empty({0, 4}, torch::kFloat16)},
      {"scalar", torch::tensor(2.5)},
      {"odd", torch::ones({3}, torch::kInt8)},     // leaves the next tensor unaligned
      {"after_odd", torch::arange(5, torch::kFloat32)},
  };
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note", "ünïcode ✓"}};
  save_safetensors(path, tensors, metadata);
  EXPECT_FALSE(fs::exists(dir / "all.safetensors.tmp"));

  auto bytes = read_bytes(path);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  EXPECT_EQ((8 + header_len) % 8, 0u) << "the data section starts 8-byte aligned";

  for (auto file : {SafetensorsFile::open(path), SafetensorsFile::parse_buffer(bytes, "copy")}) {
    EXPECT_EQ(file->metadata(), metadata);
    ASSERT_EQ(file->tensors().size(), tensors.size());
    for (const auto& [name, expected] : tensors) {
      auto got = file->tensor(name);
      EXPECT_EQ(got.scalar_type(), expected.scalar_type()) << name;
      EXPECT_EQ(got.sizes(), expected.sizes()) << name;
      EXPECT_TRUE(torch::equal(got, expected)) << name;
    }
    EXPECT_EQ(file->find("bf16")->dtype, DType::BF16);
    EXPECT_EQ(file->find("bool")->dtype, DType::BOOL);
  }
}

TEST(SafetensorsRoundTrip, Overwrite) {
  TempDir dir;
  fs::path path = dir / "x.safetensors";
  save_safetensors(path, {{"a", torch::ones({2})}});
  save_safetensors(path, {{"b", torch::zeros({3})}});
  auto file = SafetensorsFile::open(path);
  EXPECT_FALSE(file->contains("a"));
  EXPECT_TRUE(torch::equal(file->tensor("b"), torch::zeros({3})));
}

TEST(SafetensorsRoundTrip, WriterRejectsBadInput) {
  TempDir dir;
  fs::path path = dir / "x.safetensors";
  expect_error([&] { save_safetensors(path, {{"a", torch::ones({2})}, {"a", torch::ones({2})}}); },
               ErrorKind::InvalidArgument, {"(tensor 'a')", "given twice"});
  expect_error([&] { save_safetensors(path, {{"__metadata__", torch::ones({2})}}); }, ErrorKind::InvalidArgument,
               {"reserved"});
  expect_error([&] { save_safetensors(path, {{"c", torch::ones({2}, torch::kComplexFloat)}}); },
               ErrorKind::InvalidArgument, {"(tensor 'c')", "safetensors cannot store dtype"});
  expect_error([&] { save_safetensors(path, {{"u", torch::Tensor()}}); }, ErrorKind::InvalidArgument, {"undefined"});
  expect_error([&] { save_safetensors(dir / "no" / "such" / "dir.safetensors", {{"a", torch::ones({1})}}); },
               ErrorKind::Io, {"cannot open for writing"});
  EXPECT_FALSE(fs::exists(path));
}

// ---- sharded checkpoints -------------------------------------------------------------------

namespace {

struct Sharded {
  TempDir dir;
  std::map<std::string, torch::Tensor> values;
  Sharded() {
    torch::manual_seed(1);
    values = {{"embed.weight", torch::randn({10, 4})},
              {"layers.0.w", torch::randn({4, 4})},
              {"layers.1.w", torch::randn({4, 4}).to(torch::kBFloat16)},
              {"layers.1.b", torch::randn({4}).to(torch::kFloat16)},
              {"head.weight", torch::randn({10, 4})}};
    save_safetensors(dir / "model-00001-of-00003.safetensors",
                     {{"embed.weight", values["embed.weight"]}, {"layers.0.w", values["layers.0.w"]}});
    save_safetensors(dir / "model-00002-of-00003.safetensors",
                     {{"layers.1.w", values["layers.1.w"]}, {"layers.1.b", values["layers.1.b"]}});
    save_safetensors(dir / "model-00003-of-00003.safetensors", {{"head.weight", values["head.weight"]}});
  }
  // The index text; `changes` moves tensors to other shards, adds names, or (with "") drops them.
  std::string weight_map(const std::map<std::string, std::string>& changes = {}) const {
    std::map<std::string, std::string> map = {{"embed.weight", "model-00001-of-00003.safetensors"},
                                              {"layers.0.w", "model-00001-of-00003.safetensors"},
                                              {"layers.1.w", "model-00002-of-00003.safetensors"},
                                              {"layers.1.b", "model-00002-of-00003.safetensors"},
                                              {"head.weight", "model-00003-of-00003.safetensors"}};
    for (const auto& [k, v] : changes) {
      if (v.empty()) map.erase(k);
      else map[k] = v;
    }
    std::string out = R"({"metadata":{"total_size":0},"weight_map":{)";
    bool first = true;
    for (const auto& [k, v] : map) {
      out += std::string(first ? "" : ",") + "\"" + k + "\":\"" + v + "\"";
      first = false;
    }
    return out + "}}";
  }
  void write_index(const std::string& text) const { write_text(dir / "model.safetensors.index.json", text); }
  std::string index_path() const { return (dir / "model.safetensors.index.json").string(); }
};

}  // namespace

TEST(SafetensorsSharded, LoadsEveryShard) {
  Sharded s;
  s.write_index(s.weight_map());
  auto store = WeightStore::open(s.dir.path());
  EXPECT_EQ(store.files().size(), 3u);
  EXPECT_EQ(store.names(), (std::vector<std::string>{"embed.weight", "head.weight", "layers.0.w", "layers.1.b", "layers.1.w"}));
  for (const auto& [name, expected] : s.values) {
    ASSERT_TRUE(store.contains(name)) << name;
    auto got = store.get(name);
    EXPECT_EQ(got.scalar_type(), torch::kFloat32) << name;
    EXPECT_TRUE(torch::equal(got, expected.to(torch::kFloat32))) << name;
  }
  EXPECT_EQ(store.info("layers.1.w").dtype, DType::BF16);
  EXPECT_EQ(store.info("layers.1.b").dtype, DType::F16);
  EXPECT_NE(store.describe().find("3 shards"), std::string::npos) << store.describe();
  expect_error([&] { store.get("nope"); }, ErrorKind::MissingWeight, {"no tensor named 'nope'"});
}

TEST(SafetensorsSharded, IndexWinsOverStrayFiles) {
  Sharded s;
  s.write_index(s.weight_map());
  save_safetensors(s.dir / "unrelated.safetensors", {{"stray", torch::ones({1})}});
  auto store = WeightStore::open(s.dir.path());
  EXPECT_FALSE(store.contains("stray"));
}

TEST(SafetensorsSharded, MissingShard) {
  Sharded s;
  s.write_index(s.weight_map());
  fs::remove(s.dir / "model-00002-of-00003.safetensors");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Io,
               {s.index_path(), "weight_map places 'layers.1.b' in model-00002-of-00003.safetensors, which is not in",
                "hint: the download is incomplete"});
}

TEST(SafetensorsSharded, TensorNotInItsShard) {
  Sharded s;
  s.write_index(s.weight_map({{"ghost.weight", "model-00001-of-00003.safetensors"}}));
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
               {s.index_path(), "weight_map places 'ghost.weight' in model-00001-of-00003.safetensors, which does not hold it"});
}

TEST(SafetensorsSharded, TensorInTheWrongShard) {
  Sharded s;
  // Shard 3 is then not listed at all, so head.weight is in no listed shard.
  s.write_index(s.weight_map({{"head.weight", "model-00001-of-00003.safetensors"}}));
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
               {"weight_map places 'head.weight' in model-00001-of-00003.safetensors, which does not hold it"});
  // Listed, but placed in the wrong one of the listed shards.
  s.write_index(s.weight_map({{"layers.0.w", "model-00002-of-00003.safetensors"}}));
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
               {"weight_map places 'layers.0.w' in model-00002-of-00003.safetensors, which does not hold it "
                "(it is in model-00001-of-00003.safetensors)"});
}

TEST(SafetensorsSharded, TensorsMissingFromTheIndexAreStillLoaded) {
  Sharded s;
  s.write_index(s.weight_map({{"layers.1.b", ""}}));
  auto store = WeightStore::open(s.dir.path());
  EXPECT_TRUE(store.contains("layers.1.b"));
}

TEST(SafetensorsSharded, TensorInTwoShards) {
  Sharded s;
  save_safetensors(s.dir / "model-00003-of-00003.safetensors",
                   {{"head.weight", s.values["head.weight"]}, {"layers.0.w", s.values["layers.0.w"]}});
  s.write_index(s.weight_map());
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
               {"model-00003-of-00003.safetensors (tensor 'layers.0.w')", "the tensor also appears in",
                "model-00001-of-00003.safetensors"});
}

TEST(SafetensorsSharded, BadIndexFiles) {
  Sharded s;
  s.write_index(R"({"weight_map": {"a": )");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format, {s.index_path(), "invalid JSON"});
  s.write_index(R"({"metadata": {}})");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format, {s.index_path(), "no 'weight_map' object"});
  s.write_index(R"([1, 2])");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format, {s.index_path(), "no 'weight_map' object"});
  s.write_index(R"({"weight_map": {}})");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format, {s.index_path(), "the 'weight_map' is empty"});
  s.write_index(R"({"weight_map": {"a": 3}})");
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format, {"the shard of 'a' is 3, not a file name"});
  for (std::string shard : {"../model.safetensors", "sub/model.safetensors", "", ".."}) {
    s.write_index(R"({"weight_map": {"a": ")" + shard + R"("}})");
    expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
                 {"the shard of 'a' is \"" + shard + "\", not a plain file name"});
  }
}

TEST(SafetensorsSharded, CorruptShardNamesTheShard) {
  Sharded s;
  s.write_index(s.weight_map());
  auto bytes = read_bytes(s.dir / "model-00002-of-00003.safetensors");
  bytes.resize(bytes.size() - 4);
  write_bytes(s.dir / "model-00002-of-00003.safetensors", bytes);
  expect_error([&] { WeightStore::open(s.dir.path()); }, ErrorKind::Format,
               {"model-00002-of-00003.safetensors (tensor '", "run past the end of the data section"});
}

TEST(SafetensorsFolder, SingleFileFolderAndDirectFile) {
  TempDir dir;
  save_safetensors(dir / "model.safetensors", {{"w", torch::ones({2})}});
  EXPECT_TRUE(WeightStore::open(dir.path()).contains("w"));
  EXPECT_TRUE(WeightStore::open(dir / "model.safetensors").contains("w"));
  TempDir other;
  save_safetensors(other / "weights.safetensors", {{"v", torch::ones({2})}});
  EXPECT_TRUE(WeightStore::open(other.path()).contains("v"));  // the one .safetensors file there
}

TEST(SafetensorsFolder, NoWeights) {
  TempDir dir;
  write_text(dir / "pytorch_model.bin", "not read");
  expect_error([&] { WeightStore::open(dir.path()); }, ErrorKind::NotFound,
               {dir.path().string(), "no safetensors weights in this folder", "pickle"});
  save_safetensors(dir / "a.safetensors", {{"w", torch::ones({2})}});
  save_safetensors(dir / "b.safetensors", {{"w", torch::ones({2})}});
  expect_error([&] { WeightStore::open(dir.path()); }, ErrorKind::NotFound, {"found 2 other .safetensors files and no index"});
  expect_error([&] { WeightStore::open(dir / "nowhere"); }, ErrorKind::NotFound, {"no such file or folder"});
}
