// How `drvm run --gdb` names its endpoint: HOST:PORT for messages, and the gdb command a user
// pastes to connect (printed when the stub starts listening).
#pragma once

#include <string>
#include <string_view>

namespace drvm::cli {

// HOST:PORT, with an IPv6 host in brackets so that it can be pasted back.
std::string endpoint_text(const std::string& host, unsigned port);

// `gdb -ex 'target remote HOST:PORT' IMAGE`; a wildcard listen address (0.0.0.0, ::) is reached
// over loopback.
std::string gdb_connect_command(const std::string& host, unsigned port, std::string_view image);

}  // namespace drvm::cli
