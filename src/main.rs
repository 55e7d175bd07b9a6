fn main() { println!("lab"); }
