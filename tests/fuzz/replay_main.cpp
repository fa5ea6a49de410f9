// Replays a fuzz target's inputs without libFuzzer, so that every build (gcc
// included) runs the corpus as a regression test:
//   fuzz_<name>_replay [PATH...]         generated seeds, then every file given
//                                        (directories: their files, sorted)
//   fuzz_<name>_replay --write-seeds DIR  writes the generated seeds for libFuzzer
// A violated property or a sanitizer report aborts; the last line printed
// names the input.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "tests/fuzz/fuzz_harness.h"

namespace {

void runOne(const std::string& name, const std::string& bytes) {
  std::cout << "replay " << name << " (" << bytes.size() << " bytes)" << std::endl;
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (!args.empty() && args[0] == "--write-seeds") {
      if (args.size() != 2) {
        std::cerr << "usage: " << argv[0] << " --write-seeds DIR\n";
        return 2;
      }
      fs::create_directories(args[1]);
      auto seeds = plng::fuzz::generatedSeeds();
      for (const auto& seed : seeds) {
        std::ofstream out(fs::path(args[1]) / seed.name, std::ios::binary | std::ios::trunc);
        out << seed.bytes;
        if (!out) throw std::runtime_error("cannot write " + seed.name + " in " + args[1]);
      }
      std::cout << "wrote " << seeds.size() << " seeds to " << args[1] << "\n";
      return 0;
    }

    std::size_t count = 0;
    for (const auto& seed : plng::fuzz::generatedSeeds()) {
      runOne("generated:" + seed.name, seed.bytes);
      ++count;
    }
    for (const auto& arg : args) {
      std::vector<fs::path> files;
      if (fs::is_directory(arg)) {
        for (const auto& entry : fs::directory_iterator(arg)) {
          if (entry.is_regular_file()) files.push_back(entry.path());
        }
        std::sort(files.begin(), files.end());
      } else {
        files.push_back(arg);  // a missing file fails in base::readFile
      }
      for (const auto& file : files) {
        runOne(file.string(), plng::base::readFile(file));
        ++count;
      }
    }
    // A replay that ran nothing would pass whatever the code does.
    if (count == 0) {
      std::cerr << "no inputs to replay\n";
      return 1;
    }
    std::cout << count << " inputs replayed, no property violated\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[0] << ": " << e.what() << "\n";
    return 1;
  }
}
