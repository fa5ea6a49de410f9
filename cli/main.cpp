// plcctl: the command line of PlanetLab NG's central authority (PLC).
#include <iostream>
#include <string>
#include <vector>

#include "cli/app.h"

int main(int argc, char** argv) {
  const std::vector<std::string> arguments(argv + 1, argv + argc);
  return plcctl::runPlcctl(arguments, std::cout, std::cerr, plcctl::processEnvironment());
}
