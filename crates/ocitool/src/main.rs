fn main() {
    std::process::exit(ocitool::main_impl(std::env::args_os()));
}
