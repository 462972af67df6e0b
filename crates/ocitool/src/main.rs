fn main() {
    ocitool::exit(ocitool::main_impl(std::env::args_os()));
}
