// The bad-input corpus of tests/data (tests/data/README.md): every file, the reason it is
// bad and the rejection it must get, generated deterministically (no clock, fixed seeds).
//
// tests/data/generator/generate_bad_input_corpus.cpp writes these files, the index
// (expected.tsv), the README and the fuzz seeds (fuzz/corpus/); the corpus unit test checks
// that the committed files are exactly what this code generates, then that every decoder
// rejects each file as the index says.
//
//   for (const CorpusFile& f : BadInputCorpus()) Write(data_dir / f.path, f.bytes);
#pragma once

#include <map>
#include <string>
#include <vector>

namespace streamtrain::testing::corpus {

// The record files are checked against the default schema (1x28x28, 10 classes) with this
// --max-message-bytes, so the oversize file stays small.
inline constexpr size_t kMaxMessageBytes = 65536;

struct CorpusFile {
  std::string path;          // relative to tests/data: records/..., deltas/..., snapshots/...
  std::string kind;          // "record", "delta" or "chunk"
  std::string content_type;  // records: the content-type header, "-" for none; else "-"
  // record: the RejectReasonName, "ok" for a valid record.
  // delta: ErrorCodeName of DecodeDelta with the corpus key ("ok" when it decodes).
  // chunk: ErrorCodeName of SnapshotAssembler::Add (corpus key, chunk 0 of the valid
  //        snapshot already added).
  std::string expected;
  // record: the reject field ("-" when valid). delta: DeltaOutcomeName of
  // ReplicaState::OnDelta after loading the valid snapshot (key configured). chunk: the
  // ErrorCodeName of Take and then LoadSnapshot when Add succeeded, "-" otherwise.
  std::string detail;
  std::string what;   // what is wrong with it, for the README
  std::string bytes;  // the file's contents
};

// Every file of tests/data except README.md and expected.tsv, valid references included.
std::vector<CorpusFile> BadInputCorpus();
// expected.tsv: one line per file (path, kind, content_type, expected, detail).
std::string ExpectedTsv(const std::vector<CorpusFile>& files);
// README.md of tests/data.
std::string CorpusReadme(const std::vector<CorpusFile>& files);
// Seed files of each fuzz target: {"<target>/<name>" -> bytes}, for fuzz/corpus/.
std::map<std::string, std::string> FuzzSeeds(const std::vector<CorpusFile>& files);

}  // namespace streamtrain::testing::corpus
