mod smoke {
    #[test]
    fn builds() {
        assert_eq!(1 + 1, 2);
    }
}
mod engine;
mod policy;
mod proptest_reference;
