// Empty translation unit so that every module library has at least one object file.
