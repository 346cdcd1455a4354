// Reading the committed bad-input corpus: tests/data/expected.tsv and the files it names
// (tests/data/README.md). For the corpus unit test and the ingest end-to-end test.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace streamtrain::testing::corpus {

// One line of expected.tsv; the columns are documented in bad_input_corpus.h (CorpusFile).
struct IndexEntry {
  std::string path, kind, content_type, expected, detail;
};

inline std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The entries of `data_dir`/expected.tsv, in file order.
inline std::vector<IndexEntry> ReadCorpusIndex(const std::filesystem::path& data_dir) {
  std::istringstream in(ReadFileBytes(data_dir / "expected.tsv"));
  std::vector<IndexEntry> entries;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cols;
    std::istringstream fields(line);
    for (std::string col; std::getline(fields, col, '\t');) cols.push_back(col);
    if (cols.size() != 5) throw std::runtime_error("expected.tsv: bad line: " + line);
    entries.push_back({cols[0], cols[1], cols[2], cols[3], cols[4]});
  }
  return entries;
}

}  // namespace streamtrain::testing::corpus
