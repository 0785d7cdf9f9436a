// Argument checks shared by the addon's JS-facing methods: one line each, throwing a TypeError
// that names the argument. The TS wrappers (native/*.ts) have already validated values and
// applied defaults; these only re-check types, so a wrong call can never reach C++ as garbage.
#pragma once

#include <napi.h>

#define THROW_TYPE(cond, msg) \
  if (!(cond)) throw Napi::TypeError::New(env, msg)
#define REQUIRE_NUMBER(i, name) THROW_TYPE(info[i].IsNumber(), name " must be a number")
#define REQUIRE_STRING(i, name) THROW_TYPE(info[i].IsString(), name " must be a string")
#define REQUIRE_OBJECT(i, name) THROW_TYPE(info[i].IsObject(), name " must be an object")
#define REQUIRE_TYPED(i, type, jsType, name) \
  THROW_TYPE(info[i].IsTypedArray() && info[i].As<Napi::TypedArray>().TypedArrayType() == type, name " must be a " jsType)
