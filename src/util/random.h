// Random identifiers: the hex digits in task and agent ids, temp-file and
// quarantine names, session ids. From the kernel's generator (getrandom), so two
// processes started in the same instant never pick the same digits.
// Thread-safe.
#pragma once

#include <string>

namespace herd {

// `digits` random lowercase hex digits (at most 64).
std::string RandomHex(int digits);

// A random (version 4) UUID, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
std::string RandomUuid();

}  // namespace herd
