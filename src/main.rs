fn main() {
    println!("mcpsim");
}
