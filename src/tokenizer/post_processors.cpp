// Post-processors of tokenizer.json (single sequences).
#include "io/json_reader.hpp"
#include "tokenizer/tok_components.hpp"

namespace nnterp::tok {

namespace {

// Prefix tokens + the sequence + suffix tokens: what TemplateProcessing, BertProcessing and
// RobertaProcessing do to a single sequence.
class TemplatePostProcessor final : public TokPostProcessor {
 public:
  TemplatePostProcessor(std::vector<uint32_t> pre_ids, std::vector<std::string> pre_tokens,
                        std::vector<uint32_t> post_ids, std::vector<std::string> post_tokens)
      : pre_ids_(std::move(pre_ids)),
        pre_tokens_(std::move(pre_tokens)),
        post_ids_(std::move(post_ids)),
        post_tokens_(std::move(post_tokens)) {}

  void process(std::vector<uint32_t>& ids, std::vector<std::string>* tokens, bool add_special) const override {
    if (!add_special) return;
    ids.insert(ids.begin(), pre_ids_.begin(), pre_ids_.end());
    ids.insert(ids.end(), post_ids_.begin(), post_ids_.end());
    if (tokens) {
      tokens->insert(tokens->begin(), pre_tokens_.begin(), pre_tokens_.end());
      tokens->insert(tokens->end(), post_tokens_.begin(), post_tokens_.end());
    }
  }
  size_t added_tokens() const override { return pre_ids_.size() + post_ids_.size(); }

 private:
  std::vector<uint32_t> pre_ids_;
  std::vector<std::string> pre_tokens_;
  std::vector<uint32_t> post_ids_;
  std::vector<std::string> post_tokens_;
};

class NoopPostProcessor final : public TokPostProcessor {
 public:
  void process(std::vector<uint32_t>&, std::vector<std::string>*, bool) const override {}
  size_t added_tokens() const override { return 0; }
};

class SequencePostProcessor final : public TokPostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<TokPostProcessor>> items) : items_(std::move(items)) {}
  void process(std::vector<uint32_t>& ids, std::vector<std::string>* tokens, bool add_special) const override {
    for (const auto& p : items_) p->process(ids, tokens, add_special);
  }
  size_t added_tokens() const override {
    size_t n = 0;
    for (const auto& p : items_) n += p->added_tokens();
    return n;
  }

 private:
  std::vector<std::unique_ptr<TokPostProcessor>> items_;
};

// One template piece: a sequence ("A"/"B") or a special token id.
struct TokTemplatePiece {
  bool is_sequence;
  std::string id;  // "A"/"B" or the special token's key
};

// A piece written as text: "$A", "$B:1", "[CLS]", "[CLS]:0".
TokTemplatePiece tok_parse_piece_text(const std::string& text, const std::string& subject) {
  const std::string s = text.substr(0, text.find(':'));
  if (s.empty() || s[0] != '$') return {false, s};
  const std::string rest = s.substr(1);
  if (rest.empty() || rest == "A" || rest == "a") return {true, "A"};
  if (rest == "B" || rest == "b") return {true, "B"};
  // "$0", "$1": a sequence with a type id
  bool digits = !rest.empty();
  for (char c : rest) digits = digits && c >= '0' && c <= '9';
  if (digits) return {true, "A"};
  throw Error(ErrorKind::Format, subject, "cannot build a template piece from '" + text + "'");
}

// A piece of a "single" array: text, {"Sequence": {"id": ...}} or {"SpecialToken": {"id": ...}}.
TokTemplatePiece tok_parse_piece(const io::JsonValue& p, const std::string& subject) {
  if (p.is_string()) return tok_parse_piece_text(p.string(), subject);
  if (p.is_object()) {
    if (const auto seq = p.find("Sequence")) return {true, seq->at("id").string()};
    if (const auto special = p.find("SpecialToken")) return {false, special->at("id").string()};
  }
  p.fail("a template piece");
}

// The pieces of "single": a string ("[CLS] $A [SEP]") or an array.
std::vector<TokTemplatePiece> tok_template_pieces(const io::JsonValue& single, const std::string& subject) {
  std::vector<TokTemplatePiece> pieces;
  if (single.is_array()) {
    for (const auto& p : single.elements()) pieces.push_back(tok_parse_piece(p, subject));
    return pieces;
  }
  if (!single.is_string()) single.fail("a string or an array");
  const std::string s = single.string();
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    size_t k = i;
    while (k < s.size() && s[k] != ' ') ++k;
    if (k > i) pieces.push_back(tok_parse_piece_text(s.substr(i, k - i), subject));
    i = k;
  }
  return pieces;
}

std::unique_ptr<TokPostProcessor> tok_make_template(const io::JsonValue& j, const std::string& subject) {
  const std::vector<TokTemplatePiece> pieces = tok_template_pieces(j.at("single"), subject);
  const auto specials = j.find("special_tokens");
  std::vector<uint32_t> pre_ids, post_ids;
  std::vector<std::string> pre_tokens, post_tokens;
  bool seen_sequence = false;
  for (const auto& piece : pieces) {
    if (piece.is_sequence) {
      if (piece.id != "A") {
        throw Error(ErrorKind::Format, subject, "the single-sequence template refers to sequence " + piece.id);
      }
      if (seen_sequence) throw Error(ErrorKind::Unsupported, subject, "a template repeating the sequence");
      seen_sequence = true;
      continue;
    }
    const auto special = specials ? specials->find(piece.id) : std::nullopt;
    if (!special) {
      throw Error(ErrorKind::Format, subject, "the template's special token '" + piece.id + "' is not in special_tokens");
    }
    const auto ids = special->at("ids").elements();
    const auto toks = special->at("tokens").strings();
    if (ids.size() != toks.size()) {
      throw Error(ErrorKind::Format, subject, "special token '" + piece.id + "' has different numbers of ids and tokens");
    }
    for (size_t k = 0; k < ids.size(); ++k) {
      (seen_sequence ? post_ids : pre_ids).push_back(tok_checked_id(ids[k], subject));
      (seen_sequence ? post_tokens : pre_tokens).push_back(toks[k]);
    }
  }
  return std::make_unique<TemplatePostProcessor>(std::move(pre_ids), std::move(pre_tokens), std::move(post_ids),
                                                 std::move(post_tokens));
}

// A [token, id] pair of BertProcessing / RobertaProcessing.
std::pair<std::string, uint32_t> tok_token_and_id(const io::JsonValue& v, const std::string& subject) {
  if (!v.is_array() || v.size() != 2) v.fail("[token, id]");
  const auto e = v.elements();
  const uint32_t id = tok_checked_id(e[1], subject);
  return {e[0].string(), id};
}

// BertProcessing / RobertaProcessing: {"cls": [token, id], "sep": [token, id]}.
std::unique_ptr<TokPostProcessor> tok_make_cls_sep(const io::JsonValue& j, const std::string& subject) {
  auto [cls, cls_id] = tok_token_and_id(j.at("cls"), subject);
  auto [sep, sep_id] = tok_token_and_id(j.at("sep"), subject);
  return std::make_unique<TemplatePostProcessor>(std::vector<uint32_t>{cls_id},
                                                 std::vector<std::string>{std::move(cls)},
                                                 std::vector<uint32_t>{sep_id},
                                                 std::vector<std::string>{std::move(sep)});
}

}  // namespace

std::unique_ptr<TokPostProcessor> make_simple_template(std::vector<uint32_t> prefix_ids,
                                                       std::vector<std::string> prefix_tokens,
                                                       std::vector<uint32_t> suffix_ids,
                                                       std::vector<std::string> suffix_tokens) {
  return std::make_unique<TemplatePostProcessor>(std::move(prefix_ids), std::move(prefix_tokens),
                                                 std::move(suffix_ids), std::move(suffix_tokens));
}

std::unique_ptr<TokPostProcessor> make_post_processor(const io::JsonValue& j) {
  if (j.is_null()) return nullptr;
  const std::string subject = tok_subject(j);
  const TokDepthGuard depth(subject);
  std::string type;
  if (j.is_object() && !j.contains("type") && j.contains("cls") && j.contains("sep")) {
    type = "BertProcessing";
  } else {
    type = tok_component_type(j);
  }
  const std::string sub = subject + " (" + type + ")";
  if (type == "TemplateProcessing") return tok_make_template(j, sub);
  if (type == "ByteLevel") return std::make_unique<NoopPostProcessor>();  // offsets only
  if (type == "BertProcessing" || type == "RobertaProcessing") return tok_make_cls_sep(j, sub);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TokPostProcessor>> items;
    for (const auto& item : j.at("processors").elements()) {
      if (auto p = make_post_processor(item)) items.push_back(std::move(p));
    }
    return std::make_unique<SequencePostProcessor>(std::move(items));
  }
  tok_unknown_component("post-processor", type, subject);
}

}  // namespace nnterp::tok
