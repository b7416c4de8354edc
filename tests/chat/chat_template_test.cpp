// nnterp::ChatTemplate (nnterp/chat_template.hpp) through its public API: errors that say what and
// where (syntax errors, unknown or unsupported constructs, raise_exception), the limits that keep
// hostile templates from hanging or exhausting memory, deep nesting without stack overflows,
// strftime_now's fixed clock, contexts that are not JSON objects, rendering from several threads,
// and a replay of fuzz_chat_template's seed corpus (fuzz/corpus/chat_template/, docs/fuzzing.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "chat_template_input.hpp"
#include "nnterp/chat_template.hpp"
#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

namespace chat_template_test {

using nnterp::ChatRenderOptions;
using nnterp::ChatTemplate;
using nnterp::Error;
using nnterp::ErrorKind;
namespace fs = std::filesystem;

constexpr const char* kConversation = R"({
  "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}],
  "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true})";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The Error `body` throws; fails the test when it throws nothing or something else.
Error error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected nnterp::Error, got another exception: " << e.what();
    return Error(ErrorKind::InvalidArgument, "?", "?");
  }
  ADD_FAILURE() << "expected nnterp::Error, nothing was thrown";
  return Error(ErrorKind::InvalidArgument, "?", "?");
}

// Parsing `source` fails with Error(Template).
Error parse_error(const std::string& source, const std::string& name = "chat_template") {
  return error_of([&] { ChatTemplate t(source, name); });
}

// Parsing succeeds and rendering `context` fails.
Error render_error(const std::string& source, const std::string& context = "{}", const ChatRenderOptions& options = {}) {
  const ChatTemplate t(source);
  return error_of([&] { t.render(context, options); });
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// ---- (a) syntax errors: Error(Template), subject "chat_template:LINE:COLUMN", readable message ----

TEST(ChatTemplateSyntax, UnclosedBlockNamesTheBlockAndTheEnd) {
  // The error is where the template ends (line 3, after "unclosed"), as jinja2 reports it.
  const Error e = parse_error("Hello\n{% if true %}\nunclosed");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:3:9");
  EXPECT_EQ(e.message(),
            "unexpected end of template; the innermost block that needs to be closed is 'if'; "
            "expected 'elif', 'else' or 'endif'");
  EXPECT_FALSE(e.hint().empty());
  EXPECT_TRUE(contains(e.what(), "chat_template:3:9")) << e.what();
}

TEST(ChatTemplateSyntax, UnclosedForInsideIf) {
  const Error e = parse_error("{% if x %}\n  {% for m in messages %}{{ m }}\n{% endif %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  // {% endif %} closes nothing open: the for loop waits for endfor (line 3, column 4: "endif").
  EXPECT_EQ(e.subject(), "chat_template:3:4");
  EXPECT_TRUE(contains(e.message(), "'endif'")) << e.message();
  EXPECT_TRUE(contains(e.message(), "'endfor'")) << e.message();
}

TEST(ChatTemplateSyntax, BadExpressionPointsAtTheToken) {
  // "  {{ 1 + }}": the expression is missing where "}}" stands, column 10 of line 2.
  const Error e = parse_error("line one\n  {{ 1 + }}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:2:10");
  EXPECT_EQ(e.message(), "unexpected end of print statement");
}

TEST(ChatTemplateSyntax, UnterminatedStringPointsAtItsQuote) {
  const Error e = parse_error("a\nb {{ 'never closed }}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:2:6");
  EXPECT_EQ(e.message(), "unexpected char \"'\"");  // jinja2's wording
}

TEST(ChatTemplateSyntax, StrayEndforIsAnUnknownTag) {
  const Error e = parse_error("x\ny {% endfor %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:2:6");
  EXPECT_TRUE(contains(e.message(), "unknown tag 'endfor'")) << e.message();
}

TEST(ChatTemplateSyntax, UnterminatedTagsAndComments) {
  for (const std::string source : {"{{ x ", "{# never closed", "{% raw %}never closed", "{% if x "}) {
    const Error e = parse_error(source);
    EXPECT_EQ(e.kind(), ErrorKind::Template) << source;
    EXPECT_EQ(e.subject().rfind("chat_template:1:", 0), 0u) << source << " -> " << e.subject();
    EXPECT_FALSE(e.message().empty()) << source;
  }
}

TEST(ChatTemplateSyntax, ColumnsCountCodePointsAndLinesCountCrlfOnce) {
  // h é l l o ␠ { { ␠ ) : the ')' is the 10th code point (the 11th byte).
  EXPECT_EQ(parse_error("héllo {{ ) }}").subject(), "chat_template:1:10");
  EXPECT_EQ(parse_error("a\r\nb\r\n{{ ) }}").subject(), "chat_template:3:4");
}

TEST(ChatTemplateSyntax, TheSubjectCarriesTheTemplatesName) {
  EXPECT_EQ(parse_error("{{ ) }}", "gemma.jinja").subject(), "gemma.jinja:1:4");
}

// ---- (b) unknown and unsupported constructs: named, with their location ----

TEST(ChatTemplateUnsupported, UnknownFilter) {
  const Error e = parse_error("{{ messages }}\n{{ x|frobnicate }}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:2:6");
  EXPECT_TRUE(contains(e.message(), "filter")) << e.message();
  EXPECT_TRUE(contains(e.message(), "'frobnicate'")) << e.message();
}

TEST(ChatTemplateUnsupported, UnknownTest) {
  const Error e = parse_error("{% if x is frobnicated %}{% endif %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:1:12");
  EXPECT_TRUE(contains(e.message(), "test")) << e.message();
  EXPECT_TRUE(contains(e.message(), "'frobnicated'")) << e.message();
}

TEST(ChatTemplateUnsupported, IncludeAndExtends) {
  const Error include = parse_error("a\n{% include 'other.jinja' %}");
  EXPECT_EQ(include.kind(), ErrorKind::Template);
  EXPECT_EQ(include.subject(), "chat_template:2:4");
  EXPECT_TRUE(contains(include.message(), "'include'")) << include.message();
  EXPECT_TRUE(contains(include.message(), "not supported")) << include.message();

  const Error extends = parse_error("{% extends 'base.jinja' %}");
  EXPECT_EQ(extends.kind(), ErrorKind::Template);
  EXPECT_EQ(extends.subject(), "chat_template:1:4");
  EXPECT_TRUE(contains(extends.message(), "'extends'")) << extends.message();
  EXPECT_TRUE(contains(extends.message(), "not supported")) << extends.message();
  EXPECT_TRUE(contains(extends.hint(), "docs/chat_templates.md")) << extends.hint();
}

TEST(ChatTemplateUnsupported, ImportAndUnimplementedFilter) {
  const Error import = parse_error("{% import 'macros.jinja' as m %}");
  EXPECT_TRUE(contains(import.message(), "'import'")) << import.message();
  const Error wordwrap = parse_error("{{ 'a b'|wordwrap(3) }}");
  EXPECT_EQ(wordwrap.kind(), ErrorKind::Template);
  EXPECT_EQ(wordwrap.subject(), "chat_template:1:10");
  EXPECT_TRUE(contains(wordwrap.message(), "'wordwrap'")) << wordwrap.message();
  EXPECT_TRUE(contains(wordwrap.message(), "not supported")) << wordwrap.message();
}

// ---- (c) limits: recursion, huge loops, blowups, deep nesting -----------------------------------
// Each of these returns in well under a second (an Error naming the limit), never hangs, never
// exhausts memory and never overflows the stack.

TEST(ChatTemplateLimits, InfinitelyRecursiveMacro) {
  const Error e = render_error("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "recursion depth (1000)")) << e.message();
  EXPECT_TRUE(contains(e.hint(), "ChatRenderOptions")) << e.hint();
  EXPECT_EQ(e.subject().rfind("chat_template:1:", 0), 0u) << e.subject();
}

TEST(ChatTemplateLimits, InfinitelyRecursiveLoop) {
  const Error e = render_error("{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "recursion depth")) << e.message();
}

TEST(ChatTemplateLimits, ExponentialMacroCallsCountAsIterations) {
  // 2^40 calls, never deeper than 41: the iteration budget stops it (the default, 10^6 calls,
  // takes about half a second; a tenth of it here).
  ChatRenderOptions options;
  options.max_loop_iterations = 100'000;
  const Error e = render_error(
      "{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}", "{}", options);
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "max_loop_iterations (100000)")) << e.message();
}

TEST(ChatTemplateLimits, HugeRange) {
  // transformers' sandbox refuses ranges longer than 100000 before building them.
  const Error e = render_error("{% for i in range(10**9) %}{% endfor %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.subject(), "chat_template:1:18");
  EXPECT_TRUE(contains(e.message(), "MAX_RANGE (100000)")) << e.message();
}

TEST(ChatTemplateLimits, NestedLoops) {
  const Error e = render_error("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "max_loop_iterations (1000000)")) << e.message();
  EXPECT_EQ(e.subject().rfind("chat_template:1:", 0), 0u) << e.subject();
}

TEST(ChatTemplateLimits, TheIterationLimitIsAnOption) {
  ChatRenderOptions options;
  options.max_loop_iterations = 10;
  const ChatTemplate t("{% for i in xs %}.{% endfor %}");
  EXPECT_EQ(t.render(R"({"xs": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]})", options), "..........");
  const Error e = error_of([&] { t.render(R"({"xs": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]})", options); });
  EXPECT_TRUE(contains(e.message(), "max_loop_iterations (10)")) << e.message();
}

TEST(ChatTemplateLimits, StringDoubling) {
  // 2^100 bytes if nothing stopped it. (With the default limit, 64 MiB, it stops after building a
  // 64 MiB string: about a second; 1 MiB here.)
  ChatRenderOptions options;
  options.max_output_bytes = size_t{1} << 20;
  for (const char* op : {"~", "+"}) {
    const Error e = render_error(std::string("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ") +
                                     op + " ns.s %}{% endfor %}{{ ns.s|length }}",
                                 "{}", options);
    EXPECT_EQ(e.kind(), ErrorKind::Template) << op;
    EXPECT_EQ(e.message(), "a string of 2097152 bytes exceeds max_output_bytes (1048576)") << op;
  }
}

TEST(ChatTemplateLimits, ListDoublingAndRepetition) {
  EXPECT_TRUE(contains(render_error("{% set ns = namespace(s=[1]) %}{% for i in range(100) %}"
                                    "{% set ns.s = ns.s + ns.s %}{% endfor %}")
                           .message(),
                       "max_output_bytes"));
  EXPECT_TRUE(contains(render_error("{{ [1, 2] * 10000000000 }}").message(), "max_output_bytes"));
  EXPECT_TRUE(contains(render_error("{{ 'x' * 10000000000 }}").message(), "max_output_bytes"));
}

TEST(ChatTemplateLimits, HugePaddingAndWidths) {
  for (const std::string source : {"{{ 'x'|center(10000000000) }}", "{{ 'x'.ljust(10000000000) }}",
                                   "{{ 'x'.zfill(10000000000) }}", "{{ '{:999999999999}'.format(1) }}",
                                   "{{ '%999999999999d' % 1 }}", "{{ 'a\nb'|indent(10000000000) }}",
                                   "{{ [[1]]|tojson(indent=10000000000) }}",
                                   "{% set ns = namespace(s='xx') %}{% for i in range(40) %}"
                                   "{% set ns.s = ns.s.replace('', ns.s) %}{% endfor %}"}) {
    const Error e = render_error(source);
    EXPECT_EQ(e.kind(), ErrorKind::Template) << source;
    EXPECT_TRUE(contains(e.message(), "max_")) << source << ": " << e.message();
  }
}

TEST(ChatTemplateLimits, OutputBlowup) {
  ChatRenderOptions options;
  options.max_output_bytes = 1000;
  const ChatTemplate t("{% for i in range(n) %}x{% endfor %}");
  EXPECT_EQ(t.render(R"({"n": 1000})", options).size(), 1000u);
  const Error e = error_of([&] { t.render(R"({"n": 1001})", options); });
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "max_output_bytes (1000)")) << e.message();
  // The default limit (64 MiB) against 10^6 iterations of 1000 bytes.
  const Error big = render_error("{% for i in range(1000) %}{% for j in range(1000) %}" + std::string(1000, 'x') +
                                 "{% endfor %}{% endfor %}");
  EXPECT_TRUE(contains(big.message(), "max_output_bytes")) << big.message();
}

TEST(ChatTemplateLimits, DeeplyNestedExpressionsAndStatements) {
  const std::vector<std::string> sources = {
      "{{ " + std::string(100000, '(') + "1" + std::string(100000, ')') + " }}",
      "{{ " + std::string(100000, '[') + std::string(100000, ']') + " }}",
      "{{ " + std::string(100000, '-') + "1 }}",
      [] { std::string s = "{{ "; for (int i = 0; i < 100000; ++i) s += "not "; return s + "x }}"; }(),
      [] { std::string s = "{{ 1"; for (int i = 0; i < 100000; ++i) s += " + 1"; return s + " }}"; }(),
      [] { std::string s = "{{ x"; for (int i = 0; i < 100000; ++i) s += "|trim"; return s + " }}"; }(),
      [] { std::string s = "{{ x"; for (int i = 0; i < 100000; ++i) s += ".a"; return s + " }}"; }(),
      [] { std::string s; for (int i = 0; i < 100000; ++i) s += "{% if true %}"; return s; }(),
      [] {
        std::string s;
        for (int i = 0; i < 100000; ++i) s += "{% for x in y %}";
        for (int i = 0; i < 100000; ++i) s += "{% endfor %}";
        return s;
      }(),
  };
  for (const std::string& source : sources) {
    const Error e = parse_error(source);
    EXPECT_EQ(e.kind(), ErrorKind::Template) << source.substr(0, 40);
    EXPECT_TRUE(contains(e.message(), "too deep")) << source.substr(0, 40) << ": " << e.message();
  }
  // Never closed: the lexer's bracket balance or the nesting limit stops it.
  for (const char open : {'(', '[', '{'}) {
    const Error e = parse_error("{{ " + std::string(100000, open) + " }}");
    EXPECT_EQ(e.kind(), ErrorKind::Template) << open;
    EXPECT_FALSE(e.message().empty()) << open;
  }
}

TEST(ChatTemplateLimits, ModerateNestingStillWorks) {
  // Real templates nest a handful of levels. (jinja2's own parser gives up, on Python's recursion
  // limit, between 60 and 80 parentheses; nnterp's at 50.)
  EXPECT_EQ(ChatTemplate("{{ " + std::string(40, '(') + "1" + std::string(40, ')') + " }}").render("{}"), "1");
  std::string ifs;
  for (int i = 0; i < 20; ++i) ifs += "{% if true %}";
  ifs += "x";
  for (int i = 0; i < 20; ++i) ifs += "{% endif %}";
  EXPECT_EQ(ChatTemplate(ifs).render("{}"), "x");
}

TEST(ChatTemplateLimits, DeepValuesBuiltByTheTemplate) {
  // A list nested 100000 deep, built one level per iteration, then printed: its repr would
  // recurse once per level.
  const Error e = render_error("{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}"
                               "{% endfor %}{{ ns.x }}");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_TRUE(contains(e.message(), "nested too deeply")) << e.message();
  // Cycles through a namespace print without recursing forever.
  const ChatTemplate cycle("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns.me.me.me is defined }}");
  EXPECT_EQ(cycle.render("{}"), "True");
}

TEST(ChatTemplateLimits, DeeplyNestedJsonContext) {
  const ChatTemplate t("{{ x }}");
  const std::string deep = R"({"x": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  const Error e = error_of([&] { t.render(deep); });
  EXPECT_EQ(e.subject(), "the chat template's context");
  EXPECT_TRUE(contains(e.message(), "levels deep")) << e.message();
  // Within the JSON reader's bound but deeper than max_recursion_depth: a Template limit.
  ChatRenderOptions options;
  options.max_recursion_depth = 20;
  const std::string forty = R"({"x": )" + std::string(40, '[') + std::string(40, ']') + "}";
  const Error limit = error_of([&] { t.render(forty, options); });
  EXPECT_EQ(limit.kind(), ErrorKind::Template);
  EXPECT_FALSE(limit.message().empty());
}

// ---- (d) raise_exception ------------------------------------------------------------------------

TEST(ChatTemplateRaise, MessageIsExactlyTheTemplates) {
  const Error e = render_error(
      "{% for m in messages %}\n{% if m.role == 'tool' %}{{ raise_exception('Tool messages are not supported') }}"
      "{% endif %}{% endfor %}",
      R"({"messages": [{"role": "user"}, {"role": "tool"}]})");
  EXPECT_EQ(e.kind(), ErrorKind::Template);
  EXPECT_EQ(e.message(), "Tool messages are not supported");
  EXPECT_EQ(e.subject().rfind("chat_template:2:", 0), 0u) << e.subject();
  EXPECT_TRUE(contains(e.hint(), "raise_exception")) << e.hint();
  EXPECT_EQ(render_error("{{ raise_exception('msg') }}").message(), "msg");
  // An empty message (or an undefined one) still makes an Error that says what happened.
  EXPECT_EQ(render_error("{{ raise_exception('') }}").message(),
            "the template called raise_exception() with an empty message");
  EXPECT_EQ(render_error("{{ raise_exception(undefined_name) }}").message(),
            "the template called raise_exception() with an empty message");
}

// ---- (e) strftime_now and fixed_time ------------------------------------------------------------

TEST(ChatTemplateTime, FixedTimeDrivesStrftimeNow) {
  ChatRenderOptions options;
  options.fixed_time = "2026-01-15 12:34:56";
  const ChatTemplate t("{{ strftime_now('%Y-%m-%d %H:%M:%S') }}|{{ strftime_now('%d %B %Y, %A') }}");
  EXPECT_EQ(t.render("{}", options), "2026-01-15 12:34:56|15 January 2026, Thursday");
  options.fixed_time = "1999-12-31 23:59:59";
  EXPECT_EQ(ChatTemplate("{{ strftime_now('%b %d %I %p') }}").render("{}", options), "Dec 31 11 PM");
}

TEST(ChatTemplateTime, WithoutFixedTimeItIsTheClock) {
  const std::string year = ChatTemplate("{{ strftime_now('%Y') }}").render("{}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
}

TEST(ChatTemplateTime, MalformedFixedTimeIsAnInvalidArgument) {
  const ChatTemplate t("{{ strftime_now('%Y') }}");
  for (const std::string bad : {"yesterday", "2026-13-01 00:00:00", "2026-01-15", "2026-01-15 25:00:00",
                                "2026-01-15 12:34:56 extra", "2026-01-32 00:00:00"}) {
    ChatRenderOptions options;
    options.fixed_time = bad;
    const Error e = error_of([&] { t.render("{}", options); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << bad;
    EXPECT_EQ(e.subject(), "ChatRenderOptions::fixed_time") << bad;
    EXPECT_TRUE(contains(e.message(), bad)) << e.message();
  }
}

// ---- (f) the context ----------------------------------------------------------------------------

TEST(ChatTemplateContext, NotAnObjectIsAnInvalidArgument) {
  const ChatTemplate t("{{ messages }}");
  for (const std::string context : {"[1]", "42", "\"text\"", "null", "true"}) {
    const Error e = error_of([&] { t.render(context); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << context;
    EXPECT_EQ(e.subject(), "the chat template's context") << context;
    EXPECT_TRUE(contains(e.message(), "JSON object")) << e.message();
  }
}

TEST(ChatTemplateContext, MalformedJsonIsAnInvalidArgument) {
  const ChatTemplate t("{{ messages }}");
  for (const std::string context : {"", "{", "{\"messages\": [}", "{} trailing"}) {
    const Error e = error_of([&] { t.render(context); });
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument) << context;
    EXPECT_TRUE(contains(e.message(), "malformed JSON")) << e.message();
  }
}

// ---- (g) threads --------------------------------------------------------------------------------

TEST(ChatTemplateThreads, OneTemplateRendersConcurrently) {
  const ChatTemplate t(read_file(fs::path(NNTERP_TEST_DATA) / "chat_templates" / "llama-3.2.jinja"));
  const std::string context = R"({
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Add 2 and 2."},
                 {"role": "assistant", "tool_calls": [{"type": "function",
                   "function": {"name": "add", "arguments": {"a": 2, "b": 2}}}]},
                 {"role": "ipython", "content": "4"}],
    "tools": [{"type": "function", "function": {"name": "add", "description": "Adds.",
               "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}],
    "bos_token": "<|begin_of_text|>", "add_generation_prompt": true})";
  ChatRenderOptions options;
  options.fixed_time = "2026-01-15 12:34:56";
  const std::string expected = t.render(context, options);
  ASSERT_TRUE(contains(expected, "Today Date: 15 Jan 2026")) << expected;
  ASSERT_TRUE(contains(expected, "{\"name\": \"add\", \"parameters\": {\"a\": 2, \"b\": 2}}")) << expected;

  const ChatTemplate copy = t;  // copies share the parsed template
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] {
      const ChatTemplate& mine = i % 2 ? copy : t;
      std::string last;
      for (int k = 0; k < 50; ++k) {
        std::string out = mine.render(context, options);
        if (k > 0 && out != last) {
          last = "differs between renders";
          break;
        }
        last = std::move(out);
      }
      results[i] = last;
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& r : results) EXPECT_EQ(r, expected);
}

// ---- basics and the fuzz corpus -----------------------------------------------------------------

TEST(ChatTemplateBasics, RendersChatml) {
  const ChatTemplate t(read_file(fs::path(NNTERP_TEST_DATA) / "chat_templates" / "chatml.jinja"), "chatml");
  EXPECT_EQ(t.name(), "chatml");
  EXPECT_EQ(t.render(kConversation),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            "Hello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
}

// Every seed of fuzz_chat_template (fuzz/corpus/chat_template/, regression_* among them) replayed
// as the fuzzer runs it (fuzz/chat_template_input.hpp): a rendered text (the same twice) or an
// nnterp::Error with a message and a subject, nothing else.
TEST(ChatTemplateFuzzCorpus, EverySeedRendersOrThrowsError) {
  const fs::path dir = fs::path(NNTERP_TEST_DATA).parent_path().parent_path() / "fuzz" / "corpus" / "chat_template";
  ASSERT_TRUE(fs::is_directory(dir)) << dir;
  std::vector<fs::path> seeds;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file()) seeds.push_back(entry.path());
  std::sort(seeds.begin(), seeds.end());
  ASSERT_GT(seeds.size(), 50u);
  size_t rendered = 0;
  for (const fs::path& path : seeds) {
    const std::string input = read_file(path);
    const nnterp::fuzz::ChatFuzzInput in = nnterp::fuzz::decode_chat_input(input);
    try {
      const ChatTemplate t(std::string(in.source), "fuzz");
      const std::string out = t.render(in.context, in.options);
      EXPECT_LE(out.size(), in.options.max_output_bytes) << path.filename();
      EXPECT_EQ(t.render(in.context, in.options), out) << path.filename();
      ++rendered;
    } catch (const Error& e) {
      // The fuzzer's contract (fuzz/fuzz_common.hpp): an Error says what and where.
      EXPECT_FALSE(e.message().empty()) << path.filename();
      EXPECT_FALSE(e.subject().empty()) << path.filename();
      if (e.kind() == ErrorKind::Template)
        EXPECT_TRUE(e.subject() == "fuzz" || e.subject().rfind("fuzz:", 0) == 0) << path.filename() << ": " << e.subject();
    } catch (const std::exception& e) {
      ADD_FAILURE() << path.filename() << ": not an nnterp::Error: " << e.what();
    }
  }
  EXPECT_GT(rendered, seeds.size() / 3);
}

}  // namespace chat_template_test

// ---- the tokenizer's special tokens: ids and template variables agree with transformers ----------

namespace nnterp {
namespace {

// tests/data/tiny_tokenizer in a temporary folder with the given tokenizer_config.json and
// special_tokens_map.json (empty: none).
std::filesystem::path tiny_tokenizer_with(const std::string& config, const std::string& special_map) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path dir = fs::temp_directory_path() / ("nnterp_chat_special_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::copy_file(fs::path(NNTERP_TEST_DATA) / "tiny_tokenizer" / "tokenizer.json", dir / "tokenizer.json");
  std::ofstream(dir / "tokenizer_config.json") << config;
  if (!special_map.empty()) std::ofstream(dir / "special_tokens_map.json") << special_map;
  return dir;
}

TEST(ChatTemplateSpecialTokens, LegacyConfigsTakeSpecialTokensMapsValues) {
  // A config without added_tokens_decoder is from_pretrained's legacy path: special_tokens_map.json
  // wins. The id and the template's bos_token must be the same token.
  const std::string tmpl = R"("chat_template": "{{ bos_token }}|{{ eos_token }}")";
  const auto legacy = Tokenizer::from_folder(
      tiny_tokenizer_with(R"({"bos_token": "<s>", "eos_token": "</s>", )" + tmpl + "}", R"({"bos_token": "<pad>"})"));
  EXPECT_EQ(legacy.bos_token_id(), 0);  // <pad>
  EXPECT_EQ(legacy.eos_token_id(), 3);
  EXPECT_EQ(legacy.apply_chat_template({}), "<pad>|</s>");

  // A current config (with added_tokens_decoder): tokenizer_config.json alone decides.
  const auto current = Tokenizer::from_folder(tiny_tokenizer_with(
      R"({"added_tokens_decoder": {}, "bos_token": "<s>", "eos_token": "</s>", )" + tmpl + "}", R"({"bos_token": "<pad>"})"));
  EXPECT_EQ(current.bos_token_id(), 2);  // <s>
  EXPECT_EQ(current.apply_chat_template({}), "<s>|</s>");
}

}  // namespace
}  // namespace nnterp
