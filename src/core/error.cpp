#include "nnterp/error.hpp"

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

}  // namespace nnterp
