#include "nnterp/error.hpp"

#include <algorithm>

namespace nnterp {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Io: return "I/O error";
    case ErrorKind::Format: return "format error";
    case ErrorKind::Config: return "config error";
    case ErrorKind::Unsupported: return "unsupported";
    case ErrorKind::MissingWeight: return "missing weight";
    case ErrorKind::UnexpectedWeight: return "unexpected weight";
    case ErrorKind::Shape: return "shape error";
    case ErrorKind::NotFound: return "not found";
    case ErrorKind::InvalidArgument: return "invalid argument";
    case ErrorKind::OutOfOrder: return "out of order";
    case ErrorKind::Tokenizer: return "tokenizer error";
    case ErrorKind::Template: return "chat template error";
  }
  return "error";
}

static std::string compose(ErrorKind kind, const std::string& subject, const std::string& message,
                           const std::string& hint) {
  std::string text = to_string(kind);
  if (!subject.empty()) text += " in " + subject;
  text += ": " + message;
  if (!hint.empty()) text += "\n  hint: " + hint;
  return text;
}

Error::Error(ErrorKind kind, std::string subject, std::string message, std::string hint)
    : std::runtime_error(compose(kind, subject, message, hint)),
      kind_(kind),
      subject_(std::move(subject)),
      message_(std::move(message)),
      hint_(std::move(hint)) {}

OutOfOrderError::OutOfOrderError(const std::string& requested, const std::string& current)
    : Error(ErrorKind::OutOfOrder, requested,
            "the forward pass has already passed this point (it is at " + current + ")",
            "access points in forward order: embeddings, then layers 0..L-1 (input, attention, "
            "MLP, output), then ln_final and logits") {}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string nearest_name(std::string_view query, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = 0;
  for (const auto& c : candidates) {
    const size_t d = edit_distance(query, c);
    if (best.empty() || d < best_distance) best = c, best_distance = d;
  }
  return best;
}

}  // namespace nnterp
