// A small fuzz loop: mutations of the corpus's valid manifests (bytes flipped, inserted,
// deleted, repeated; lines swapped; scalars replaced by hostile ones; deep nesting;
// invalid UTF-8) through the parser and the trainer's validator. Never a crash or an
// exception, always a verdict; a refusal is InvalidArgument with a short message that
// is valid UTF-8 (the controller writes it into a condition as JSON).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "corpus.h"
#include "mlscale/api/inference_service.h"
#include "mlscale/api/training_job.h"
#include "mlscale/worker/config.h"

namespace mlscale::api {
namespace {

std::string Mutate(std::string text, std::mt19937& random) {
  auto pick = [&](std::size_t n) { return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(random); };
  static const std::vector<std::string> kTokens = {
      "null", "~", "yes", "no", "-1", "0", "1e309", "18446744073709551616", ".inf", ".nan", "\"\"", "[]", "{}",
      "[[[[", "}}}", "\"", "'", "&a x", "*a", "!!binary", "? ", "- ", ": ", "\t", "\n", "#", "\xff", "\xc3", "\xed\xa0\x80",
      "0x", "0b2", "1_", std::string(300, '['), std::string(5000, 'a'), "\"\\u0000\"", "\"\\ud800\"", "|", ">-"};
  int mutations = 1 + static_cast<int>(pick(4));
  for (int m = 0; m < mutations; ++m) {
    std::size_t at = pick(text.size() + 1);
    switch (pick(7)) {
      case 0:  // flip a byte
        if (!text.empty()) text[pick(text.size())] = static_cast<char>(pick(256));
        break;
      case 1:  // insert a hostile token
        text.insert(at, kTokens[pick(kTokens.size())]);
        break;
      case 2:  // delete a range
        text.erase(at, pick(32));
        break;
      case 3:  // repeat a range
        text.insert(at, text.substr(pick(text.size() + 1), pick(64)));
        break;
      case 4:  // truncate
        text.resize(at);
        break;
      case 5: {  // replace the value after a ':' with a token
        std::size_t colon = text.find(": ", at);
        if (colon == std::string::npos) break;
        std::size_t end = text.find('\n', colon);
        text.replace(colon + 2, (end == std::string::npos ? text.size() : end) - colon - 2, kTokens[pick(kTokens.size())]);
        break;
      }
      case 6: {  // swap two lines
        std::vector<std::string> lines;
        std::stringstream in(text);
        for (std::string line; std::getline(in, line);) lines.push_back(line);
        if (lines.size() > 1) std::swap(lines[pick(lines.size())], lines[pick(lines.size())]);
        text.clear();
        for (const auto& line : lines) text += line + "\n";
        break;
      }
    }
  }
  return text;
}

TEST(Fuzz, MutatedManifestsAlwaysGetAVerdict) {
  std::vector<std::string> seeds;
  std::vector<bool> inference_service;  // per seed: parsed by the InferenceService parser
  for (const auto& c : testing::ReadCorpus(MLSCALE_CORPUS_DIR)) {
    if (!c.valid) continue;
    inference_service.push_back(c.name.find("isvc") != std::string::npos);
    std::ifstream in(c.path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    seeds.push_back(text.str());
  }
  ASSERT_FALSE(seeds.empty());
  auto validate_trainer = [](const nlohmann::json& trainer) { return worker::ParseTrainerConfig(trainer).status(); };
  std::mt19937 random(20261201);
  int accepted = 0, refused = 0;
  for (int i = 0; i < 2500; ++i) {
    const std::size_t seed = static_cast<std::size_t>(i) % seeds.size();
    std::string manifest = Mutate(seeds[seed], random);
    SCOPED_TRACE(manifest.substr(0, 200));
    // A hang shows as the ctest timeout; MLSCALE_FUZZ_DUMP=<file> keeps the input being parsed.
    if (const char* dump = std::getenv("MLSCALE_FUZZ_DUMP")) std::ofstream(dump, std::ios::binary) << manifest;
    Status job = InvalidArgument("not parsed");
    ASSERT_NO_THROW(job = inference_service[seed] ? ParseInferenceService(manifest).status()
                                                  : ParseTrainingJob(manifest, validate_trainer).status());
    if (job.ok()) {
      ++accepted;
      continue;
    }
    ++refused;
    const std::string message = job.message();
    ASSERT_EQ(job.code(), StatusCode::kInvalidArgument) << message;
    ASSERT_FALSE(message.empty());
    ASSERT_LT(message.size(), 1024u) << message;
    ASSERT_NO_THROW((void)nlohmann::json(message).dump()) << "not UTF-8: " << message;
  }
  // Both verdicts occur, or the mutations are too weak or too strong to mean anything.
  EXPECT_GT(accepted, 100);
  EXPECT_GT(refused, 500);
}

}  // namespace
}  // namespace mlscale::api
