// Writes the bad-input corpus (tests/data/README.md): every file, expected.tsv and the
// README into DATA_DIR, and the fuzz seeds into FUZZ_CORPUS_DIR/<target>/. Deterministic:
// running it twice gives the same bytes.
//
//   streamtrain_bad_input_corpus tests/data fuzz/corpus
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>

#include "bad_input_corpus.h"

namespace fs = std::filesystem;
using namespace streamtrain::testing::corpus;

namespace {

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DATA_DIR FUZZ_CORPUS_DIR\n", argv[0]);
    return 2;
  }
  try {
    const fs::path data = argv[1], fuzz = argv[2];
    const std::vector<CorpusFile> files = BadInputCorpus();
    for (const CorpusFile& f : files) Write(data / f.path, f.bytes);
    Write(data / "expected.tsv", ExpectedTsv(files));
    Write(data / "README.md", CorpusReadme(files));
    const auto seeds = FuzzSeeds(files);
    for (const auto& [name, bytes] : seeds) Write(fuzz / name, bytes);
    std::printf("wrote %zu corpus files to %s and %zu fuzz seeds to %s\n", files.size(),
                data.c_str(), seeds.size(), fuzz.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
