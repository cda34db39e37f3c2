// Boost.PropertyTree's JSON reader and writer, included as Boost 1.74 means them to be.
// Its parser includes the deprecated <boost/bind.hpp> and names bind's placeholder _1 without a
// namespace. Instead of importing _1, _2, ... into the global namespace (what that header does,
// with a "deprecated" message, unless BOOST_BIND_GLOBAL_PLACEHOLDERS silences it), the
// placeholders come from boost::placeholders into the parser's own namespace only.
#pragma once

#include <boost/bind/bind.hpp>
#include <boost/bind/placeholders.hpp>

namespace boost::property_tree::json_parser::detail {
using namespace boost::placeholders;
}  // namespace boost::property_tree::json_parser::detail

// Makes <boost/bind.hpp> (included by the parser) skip its global using-directive and message.
#ifndef BOOST_BIND_NO_PLACEHOLDERS
#define BOOST_BIND_NO_PLACEHOLDERS
#define DRVM_UNDEF_BIND_NO_PLACEHOLDERS
#endif
#include <boost/property_tree/json_parser.hpp>
#ifdef DRVM_UNDEF_BIND_NO_PLACEHOLDERS
#undef BOOST_BIND_NO_PLACEHOLDERS
#undef DRVM_UNDEF_BIND_NO_PLACEHOLDERS
#endif
#include <boost/property_tree/ptree.hpp>
